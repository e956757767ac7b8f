//! The parts that need the `oracle` crate: value conversion from the
//! crate's own types (constructed in Rust, no server) and the connection's
//! behaviour without Oracle Instant Client. Needs `--features oracle`; no
//! client library and no server are needed.
#![cfg(feature = "oracle")]

use molt_core::oracle::conn::{connect, OracleError};
use molt_core::oracle::convert::{interval_ds_text, interval_ym_text, timestamp_text};
use molt_core::oracle::ConvertOptions;
use molt_core::ConnUrl;
use oracle::sql_type::{IntervalDS, IntervalYM, Timestamp};

const STRICT: ConvertOptions = ConvertOptions {
    allow_rounding: false,
};
const ROUNDING: ConvertOptions = ConvertOptions {
    allow_rounding: true,
};

#[test]
fn timestamps_from_the_crate() {
    let ts = Timestamp::new(2024, 2, 29, 23, 59, 59, 1_000).unwrap();
    assert_eq!(
        timestamp_text(&ts, false, &STRICT).unwrap(),
        ("2024-02-29 23:59:59.000001".into(), false)
    );
    // Oracle year -44 is 44 BC, astronomical -43.
    let bc = Timestamp::new(-44, 3, 15, 12, 0, 0, 0).unwrap();
    assert_eq!(
        timestamp_text(&bc, false, &STRICT).unwrap().0,
        "-0043-03-15 12:00:00"
    );
    // A DATE: whole seconds.
    let date = Timestamp::new(1999, 12, 31, 0, 0, 0, 0)
        .unwrap()
        .and_prec(0)
        .unwrap();
    assert_eq!(
        timestamp_text(&date, false, &STRICT).unwrap().0,
        "1999-12-31 00:00:00"
    );
}

#[test]
fn nanoseconds_are_refused_or_truncated_and_counted() {
    let ts = Timestamp::new(2024, 1, 1, 0, 0, 0, 123_456_789).unwrap();
    let err = timestamp_text(&ts, false, &STRICT).unwrap_err();
    assert!(err.to_string().contains("below the microsecond"), "{err}");
    assert_eq!(
        timestamp_text(&ts, false, &ROUNDING).unwrap(),
        ("2024-01-01 00:00:00.123456".into(), true)
    );
    let exact = Timestamp::new(2024, 1, 1, 0, 0, 0, 123_456_000).unwrap();
    assert_eq!(
        timestamp_text(&exact, false, &STRICT).unwrap(),
        ("2024-01-01 00:00:00.123456".into(), false)
    );
}

#[test]
fn time_zones_become_utc() {
    let ts = Timestamp::new(2024, 1, 1, 1, 30, 0, 500_000_000)
        .unwrap()
        .and_tz_hm_offset(5, 30)
        .unwrap();
    assert_eq!(
        timestamp_text(&ts, true, &STRICT).unwrap().0,
        "2023-12-31 20:00:00.5Z"
    );
    let west = Timestamp::new(2023, 12, 31, 20, 0, 0, 0)
        .unwrap()
        .and_tz_hm_offset(-8, 0)
        .unwrap();
    assert_eq!(
        timestamp_text(&west, true, &STRICT).unwrap().0,
        "2024-01-01 04:00:00Z"
    );
    let utc = Timestamp::new(2024, 6, 1, 12, 0, 0, 0).unwrap();
    assert_eq!(
        timestamp_text(&utc, true, &STRICT).unwrap().0,
        "2024-06-01 12:00:00Z"
    );
}

#[test]
fn intervals_from_the_crate() {
    assert_eq!(interval_ym_text(&IntervalYM::new(1, 2).unwrap()), "P1Y2M");
    assert_eq!(
        interval_ym_text(&IntervalYM::new(-3, -1).unwrap()),
        "P-3Y-1M"
    );
    let ds = IntervalDS::new(3, 4, 5, 6, 7_000).unwrap();
    assert_eq!(
        interval_ds_text(&ds, &STRICT).unwrap(),
        ("P3DT4H5M6.000007S".into(), false)
    );
    let neg = IntervalDS::new(-1, -2, 0, 0, -500_000_000).unwrap();
    assert_eq!(interval_ds_text(&neg, &STRICT).unwrap().0, "P-1DT-2H-0.5S");
    let nanos = IntervalDS::new(0, 0, 0, 1, 1).unwrap();
    assert!(interval_ds_text(&nanos, &STRICT).is_err());
    assert_eq!(
        interval_ds_text(&nanos, &ROUNDING).unwrap(),
        ("PT1S".into(), true)
    );
    assert_eq!(
        interval_ds_text(&IntervalDS::new(0, 0, 0, 0, 0).unwrap(), &STRICT)
            .unwrap()
            .0,
        "PT0S"
    );
}

/// This machine has no Oracle Instant Client: connecting must fail with
/// one line saying what to install, and never show the password.
#[test]
fn missing_client_is_one_clear_line() {
    let url = ConnUrl::parse("oracle://scott:tiger@127.0.0.1:1/ORCL").unwrap();
    let err = connect(&url).expect_err("no Oracle client or server here");
    assert!(matches!(err, OracleError::NoClient { .. }), "{err:?}");
    let text = err.to_string();
    assert_eq!(
        text,
        "Oracle Instant Client is not installed or not found: install Oracle Instant Client (basic or basic-lite) \
         and add its directory to LD_LIBRARY_PATH (connecting to oracle://scott:***@127.0.0.1:1/ORCL)"
    );
    assert!(!text.contains("tiger"));
    assert!(!text.contains('\n'));
    assert!(!format!("{err:?}").contains("tiger"));
}

#[test]
fn bad_urls_are_refused_before_the_client_loads() {
    let err = connect(&ConnUrl::parse("oracle://:secret@h:1/S").unwrap()).unwrap_err();
    assert!(matches!(err, OracleError::Url(_)), "{err:?}");
    assert!(!err.to_string().contains("secret"));
}
