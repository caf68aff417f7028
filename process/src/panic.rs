//! What a caught panic said, for the logs of the places that contain one
//! (route handlers, call callbacks, close callbacks).

/// The message a panic carried, if it was a string.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_str_and_string_panics() {
        let payloads: [Box<dyn std::any::Any + Send>; 3] = [
            Box::new("static"),
            Box::new(String::from("owned")),
            Box::new(7u8),
        ];
        let said: Vec<&str> = payloads.iter().map(|p| panic_message(&**p)).collect();
        assert_eq!(said, ["static", "owned", "(not a string)"]);
    }
}
