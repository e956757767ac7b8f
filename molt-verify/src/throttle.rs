//! `--rows-per-second`: one budget of source rows for every job.
//!
//! Verify reads a production source while it serves traffic. The limit is
//! the source's, so the jobs share it: after each compared chunk, a job
//! adds the chunk's rows to the total and waits until the total is within
//! the rate since the start. The rate is kept on average, at chunk
//! granularity (`--chunk-rows` rows at a time), which is what a source
//! feels; a single chunk's query is never slowed down.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Throttle {
    rows_per_second: f64,
    started: Instant,
    rows: Mutex<u64>,
}

impl Throttle {
    /// `None` for 0 (no limit).
    pub fn new(rows_per_second: u64) -> Option<Throttle> {
        (rows_per_second > 0).then(|| Throttle {
            rows_per_second: rows_per_second as f64,
            started: Instant::now(),
            rows: Mutex::new(0),
        })
    }

    /// Counts `rows` read and waits until the total is within the rate.
    /// The lock is held while waiting, so that jobs queue behind each other
    /// instead of all waking at once.
    pub async fn pace(&self, rows: u64) {
        let mut total = self.rows.lock().await;
        *total += rows;
        let due = self.started + Duration::from_secs_f64(*total as f64 / self.rows_per_second);
        tokio::time::sleep_until(due).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_until_the_rows_fit_the_rate() {
        let throttle = Throttle::new(1000).unwrap();
        let start = Instant::now();
        throttle.pace(500).await;
        throttle.pace(1500).await;
        assert!(
            start.elapsed() >= Duration::from_millis(1990),
            "{:?}",
            start.elapsed()
        );
        assert!(Throttle::new(0).is_none());
    }
}
