use std::fmt;

/// An error code of the wire error table, shared by every packet format.
///
/// | code | meaning |
/// |---|---|
/// | 0 | ok |
/// | 1 | unknown |
/// | 2 | marshal failed |
/// | 3 | unmarshal failed |
/// | 4 | not supported (also: no such route) |
/// | 5 | timeout |
/// | 6 | packet size invalid |
/// | 7 | unexpected (programming error) |
/// | 8 | session closed |
/// | 9 | invalid error payload |
/// | 10 | overloaded (load limit or full queue) |
/// | 11..=999 | reserved for the framework |
/// | 1000.. | application errors |
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Code(pub u32);

impl Code {
    /// Success.
    pub const OK: Code = Code(0);
    /// An error with no more specific code.
    pub const UNKNOWN: Code = Code(1);
    /// A message could not be encoded.
    pub const MARSHAL: Code = Code(2);
    /// A message could not be decoded.
    pub const UNMARSHAL: Code = Code(3);
    /// Not supported; also the answer to a request for an unknown route.
    pub const NOT_SUPPORTED: Code = Code(4);
    /// No response within the call's timeout.
    pub const TIMEOUT: Code = Code(5);
    /// A frame over the maximum size, or a malformed length.
    pub const PACKET_SIZE: Code = Code(6);
    /// A programming error, such as answering something that is no request.
    pub const UNEXPECTED: Code = Code(7);
    /// The session closed before the operation completed.
    pub const SESSION_CLOSED: Code = Code(8);
    /// An error response whose payload does not parse.
    pub const INVALID_ERROR_PAYLOAD: Code = Code(9);
    /// Refused by a load limit or a full queue.
    pub const OVERLOADED: Code = Code(10);
    /// The first application error code.
    pub const APP_MIN: Code = Code(1000);

    /// True for codes 1000 and up.
    pub fn is_application(self) -> bool {
        self >= Code::APP_MIN
    }

    /// A short name for the framework's codes.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "ok",
            1 => "unknown",
            2 => "marshal failed",
            3 => "unmarshal failed",
            4 => "not supported",
            5 => "timeout",
            6 => "packet size invalid",
            7 => "unexpected",
            8 => "session closed",
            9 => "invalid error payload",
            10 => "overloaded",
            11..=999 => "reserved",
            _ => "application",
        }
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({} {})", self.0, self.name())
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.name())
    }
}

impl From<u32> for Code {
    fn from(code: u32) -> Self {
        Code(code)
    }
}
