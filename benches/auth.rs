//! Password hashing figures: `cargo bench --bench auth`.
//!
//! Prints the median time of a sign-in check for an existing account with the
//! right and the wrong password and for an account that does not exist (they
//! must be near-equal, so timing reveals nothing), and what a burst of
//! concurrent sign-ins does with hashing bounded to one per core.

use std::time::{Duration, Instant};

use questline::infra::password::PasswordHasher;
use secrecy::SecretString;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    actix_web::rt::System::new().block_on(async {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let hasher = PasswordHasher::new(cores);
        let hash = hasher.hash(SecretString::from("violet tractor pebble moonlight")).await.unwrap();

        let rounds = 15;
        let mut cases: Vec<(&str, Vec<Duration>)> = Vec::new();
        for (name, stored, password) in [
            ("existing account, right password", Some(hash.clone()), "violet tractor pebble moonlight"),
            ("existing account, wrong password", Some(hash.clone()), "not the password at all"),
            ("no such account", None, "violet tractor pebble moonlight"),
        ] {
            let mut times = Vec::new();
            for _ in 0..rounds {
                let start = Instant::now();
                hasher.verify(stored.clone(), SecretString::from(password)).await.unwrap();
                times.push(start.elapsed());
            }
            cases.push((name, times));
        }
        println!("argon2id m=19456 KiB t=2 p=1, {cores} hashing slot(s), {rounds} rounds each");
        for (name, times) in &cases {
            println!("  {name:<36} median {:>7.1} ms", median(times.clone()).as_secs_f64() * 1000.0);
        }
        let medians: Vec<f64> = cases.iter().map(|(_, t)| median(t.clone()).as_secs_f64()).collect();
        let spread = medians.iter().cloned().fold(f64::MIN, f64::max) / medians.iter().cloned().fold(f64::MAX, f64::min);
        println!("  slowest / fastest median: {spread:.3}");

        // A burst far larger than the slots: every request is served within
        // the queue wait or refused with 503; none runs unbounded.
        let burst = 24;
        let start = Instant::now();
        let tasks: Vec<_> = (0..burst)
            .map(|_| {
                let hasher = hasher.clone();
                let stored = Some(hash.clone());
                actix_web::rt::spawn(async move {
                    let t = Instant::now();
                    let r = hasher.verify(stored, SecretString::from("wrong password guess")).await;
                    (r.is_ok(), t.elapsed())
                })
            })
            .collect();
        let mut served = 0;
        let mut refused = 0;
        let mut worst = Duration::ZERO;
        for t in tasks {
            let (ok, took) = t.await.unwrap();
            if ok { served += 1 } else { refused += 1 }
            worst = worst.max(took);
        }
        println!(
            "burst of {burst} concurrent checks: {served} served, {refused} refused with 503, longest wait {:.0} ms, all done in {:.0} ms",
            worst.as_secs_f64() * 1000.0,
            start.elapsed().as_secs_f64() * 1000.0
        );
    });
}
