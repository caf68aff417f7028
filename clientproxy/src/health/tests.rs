use super::*;

const MS: Duration = Duration::from_millis(1);

#[test]
fn backoff_doubles_from_the_base_to_the_cap() {
    let options = HealthOptions::default();
    let mut health = Health::new();
    let now = Instant::now();
    // u64::MAX: the top of the jitter range, i.e. the full wait.
    let waits: Vec<_> = (0..10)
        .map(|_| health.handle_connect_failed(now, &options, u64::MAX))
        .collect();
    let ms = [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000];
    assert_eq!(waits, ms.map(|n| n * MS));
    assert_eq!(health.failures(), 10);
    // Far more failures stay at the cap, without overflow.
    for _ in 0..100 {
        health.handle_connect_failed(now, &options, u64::MAX);
    }
    assert_eq!(
        health.handle_connect_failed(now, &options, u64::MAX),
        10_000 * MS
    );
}

#[test]
fn jitter_falls_in_the_upper_half() {
    let options = HealthOptions::default();
    for n in [1, 2, 5, 8, 40] {
        let full = options.backoff(n, u64::MAX);
        assert_eq!(options.backoff(n, 0), full / 2, "failure {n}");
        for random in [1, 12_345_678_901, u64::MAX / 2, u64::MAX - 1] {
            let d = options.backoff(n, random);
            assert!(
                d >= full / 2 && d <= full,
                "failure {n}: {d:?} outside {full:?}"
            );
        }
        // Deterministic given the random input.
        assert_eq!(options.backoff(n, 77), options.backoff(n, 77));
    }
    // The middle of the random range lands in the middle of the half.
    let mid = options.backoff(1, u64::MAX / 2);
    assert!(mid > 74 * MS && mid < 76 * MS, "{mid:?}");
    // A cap below the base means the base.
    let tight = HealthOptions::default().cap(Duration::ZERO);
    assert_eq!(tight.backoff(9, u64::MAX), 100 * MS);
}

#[test]
fn unhealthy_until_the_backoff_is_over() {
    let options = HealthOptions::default().base(10 * MS).cap(40 * MS);
    let mut health = Health::new();
    let t0 = Instant::now();
    assert!(health.is_healthy(t0));
    let wait = health.handle_connect_failed(t0, &options, 0);
    assert_eq!(wait, 5 * MS);
    assert_eq!(health.unhealthy_until(), Some(t0 + 5 * MS));
    assert!(!health.is_healthy(t0));
    assert!(!health.is_healthy(t0 + 4 * MS));
    assert!(health.is_healthy(t0 + 5 * MS));
    // A second failure, later: put aside from then, for longer.
    let t1 = t0 + 5 * MS;
    assert_eq!(
        health.handle_connect_failed(t1, &options, u64::MAX),
        20 * MS
    );
    assert!(!health.is_healthy(t1 + 19 * MS));
    assert!(health.is_healthy(t1 + 20 * MS));
}

#[test]
fn success_resets_the_backoff() {
    let options = HealthOptions::default();
    let mut health = Health::new();
    let now = Instant::now();
    for _ in 0..4 {
        health.handle_connect_failed(now, &options, u64::MAX);
    }
    assert!(!health.is_healthy(now));
    health.handle_connect_ok();
    assert!(health.is_healthy(now));
    assert_eq!((health.failures(), health.unhealthy_until()), (0, None));
    assert_eq!(
        health.handle_connect_failed(now, &options, u64::MAX),
        100 * MS
    );
}

#[test]
fn a_huge_wait_does_not_overflow_the_clock() {
    let options = HealthOptions::default()
        .base(Duration::MAX)
        .cap(Duration::MAX);
    let mut health = Health::new();
    let now = Instant::now();
    health.handle_connect_failed(now, &options, u64::MAX);
    assert!(!health.is_healthy(now + Duration::from_secs(3600)));
}

#[test]
fn options_load_from_milliseconds() {
    let options: HealthOptions = serde_json::from_str(r#"{"base":50}"#).expect("json");
    assert_eq!(options, HealthOptions::default().base(50 * MS));
    let text = serde_json::to_string(&HealthOptions::default()).expect("json");
    assert_eq!(text, r#"{"base":100,"cap":10000}"#);
    let back: HealthOptions = serde_json::from_str(&text).expect("json");
    assert_eq!(back, HealthOptions::default());
}
