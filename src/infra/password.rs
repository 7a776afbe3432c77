//! Password hashing with argon2id, bounded so a login flood cannot starve
//! the rest of the app, and the rules for new passwords.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::error::AppError;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;

/// How long a request waits for a hashing slot before it gets 503.
pub const QUEUE_WAIT: Duration = Duration::from_secs(3);

/// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"),
    )
}

/// A unit of hashing work for the dedicated threads.
type Job = Box<dyn FnOnce() + Send>;

/// Starts `n` threads that run hashing jobs until every sender is gone.
///
/// Argon2 allocates its 19 MiB of blocks on the thread that hashes, and the
/// allocator keeps freed memory in that thread's arena. On the shared
/// blocking pool (hundreds of threads) a sign-in flood left a gigabyte
/// behind; on a fixed handful of threads the memory is bounded by their
/// number.
fn spawn_hashing_threads(n: usize) -> std::sync::mpsc::Sender<Job> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    for i in 0..n {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
            lower_priority();
            serve_jobs(&rx)
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a password hashing thread");
        }
    }
    tx
}

/// Hashing runs below the pages' priority, at nice 10 on Linux: a flood of
/// sign-ins then takes little of the CPU that pages want. Not at the lowest
/// (nice 19): with the machine busy, a nice-19 thread gets about 1 % of a
/// core, an argon2 check then takes seconds, and sign-ins queued behind it
/// got 503 (the fault test, with two busy loops beside the cluster: sign-in
/// p50 3 s and 50 sign-ins refused). At nice 10 a hashing thread still gets
/// a tenth of a contended core. Failing to lower it only costs that.
fn lower_priority() {
    use thread_priority::{set_current_thread_priority, ThreadPriority, ThreadPriorityValue};
    // The crate maps its 0..=99 scale onto nice 19..-20 for Linux's normal
    // scheduling; 22 lands on nice 10 (a test below reads it back).
    let lowered = ThreadPriorityValue::try_from(22u8)
        .map_err(|e| e.to_string())
        .and_then(|v| set_current_thread_priority(ThreadPriority::Crossplatform(v)).map_err(|e| format!("{e:?}")));
    if let Err(e) = lowered {
        tracing::warn!(error = %e, "cannot lower the password hashing threads' priority");
    }
}

fn serve_jobs(rx: &std::sync::Mutex<std::sync::mpsc::Receiver<Job>>) {
    loop {
        let job = {
            let guard = rx.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match guard.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        job();
    }
}

/// Hashes and verifies on a few dedicated threads (one per core), never on
/// the async workers or the shared blocking pool.
#[derive(Clone)]
pub struct PasswordHasher {
    slots: Arc<Semaphore>,
    jobs: std::sync::mpsc::Sender<Job>,
    queue_wait: Duration,
    /// Verified against when an account does not exist, so the answer takes
    /// as long as for one that does.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> Self {
        Self::with_queue_wait(concurrency, QUEUE_WAIT)
    }

    /// `concurrency` hashes at once; a request waits at most `queue_wait`
    /// for a free slot.
    pub fn with_queue_wait(concurrency: usize, queue_wait: Duration) -> Self {
        let salt = SaltString::generate(&mut OsRng);
        let dummy = argon2()
            .hash_password(b"not a real password, only for timing", &salt)
            .expect("hashing a constant works")
            .to_string();
        let concurrency = concurrency.max(1);
        PasswordHasher {
            slots: Arc::new(Semaphore::new(concurrency)),
            jobs: spawn_hashing_threads(concurrency),
            queue_wait,
            dummy_hash: dummy.into(),
        }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
        let permit = tokio::time::timeout(self.queue_wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| AppError::Unavailable(anyhow::anyhow!("password hashing queue full")))?
            .map_err(|e| AppError::Internal(e.into()))?;
        // The permit bounds the jobs in flight to the number of threads, so
        // a job never waits in the channel behind others.
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(f());
            }))
            .map_err(|_| AppError::Internal(anyhow::anyhow!("password hashing threads are gone")))?;
        let out = result.await.map_err(|_| AppError::Internal(anyhow::anyhow!("a password hashing job panicked")))?;
        drop(permit);
        Ok(out)
    }

    /// A PHC-format argon2id hash of `password`.
    pub async fn hash(&self, password: SecretString) -> Result<String, AppError> {
        self.run(move || hash_now(password.expose_secret()).map_err(AppError::Internal)).await?
    }

    /// Checks `password` against `stored`; with no stored hash (no account,
    /// or no usable password) it still does the work and answers false.
    pub async fn verify(&self, stored: Option<String>, password: SecretString) -> Result<bool, AppError> {
        let dummy = self.dummy_hash.clone();
        self.run(move || {
            let (hash, real) = match &stored {
                Some(h) => (h.as_str(), true),
                None => (&*dummy, false),
            };
            let ok = if crate::infra::legacy_hash::is_legacy(hash) {
                crate::infra::legacy_hash::verify(hash, password.expose_secret())
            } else {
                match PasswordHash::new(hash) {
                    Ok(parsed) => verify_argon2(&parsed, password.expose_secret().as_bytes()),
                    Err(_) => {
                        // An unknown format: spend the same time, then refuse.
                        let parsed = PasswordHash::new(&dummy).expect("dummy hash parses");
                        let _ = verify_argon2(&parsed, password.expose_secret().as_bytes());
                        false
                    }
                }
            };
            ok && real
        })
        .await
    }
}

thread_local! {
    /// A hashing thread's argon2 memory (19 MiB), allocated at its first
    /// check and reused by every later one: a flood of sign-ins allocates
    /// nothing large, so the allocator has nothing to keep.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Checks `password` against a PHC argon2 hash. Hashes with this app's
/// parameters (all it ever wrote) run in the thread's reused memory; any
/// other parameters take argon2's own, allocating, path.
fn verify_argon2(hash: &PasswordHash<'_>, password: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    let ours = argon2();
    let Ok(params) = Params::try_from(hash) else { return false };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else { return false };
    let same = hash.algorithm == argon2::ARGON2ID_IDENT
        && hash.version.is_none_or(|v| v == Version::V0x13 as u32)
        && params.m_cost() == ours.params().m_cost()
        && params.t_cost() == ours.params().t_cost()
        && params.p_cost() == ours.params().p_cost();
    if !same {
        return ours.verify_password(password, hash).is_ok();
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    let Ok(exact) = Params::new(params.m_cost(), params.t_cost(), params.p_cost(), Some(expected.len())) else {
        return false;
    };
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, exact);
    let mut out = [0u8; 64];
    let out = &mut out[..expected.len().min(64)];
    let computed = BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        blocks.resize(params.block_count(), argon2::Block::default());
        hasher.hash_password_into_with_memory(password, salt, out, &mut blocks[..])
    });
    computed.is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
}

/// Hashes on the calling thread; for the command line, where no request
/// waits on it. Web handlers use [`PasswordHasher::hash`].
pub fn hash_now(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))
}

/// Why a new password is refused, in words for the form.
pub fn check_new_password(password: &str, username: &str, email: Option<&str>) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_LENGTH {
        return Err(format!("Use at least {MIN_LENGTH} characters."));
    }
    if len > MAX_LENGTH {
        return Err(format!("Use at most {MAX_LENGTH} characters."));
    }
    if !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()) {
        return Err("Your password must not contain your username.".into());
    }
    let mut inputs = vec![username];
    if let Some(e) = email {
        inputs.push(e);
    }
    let estimate = zxcvbn::zxcvbn(password, &inputs);
    if (estimate.score() as u8) < 3 {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "It would be easy to guess.".into());
        return Err(format!("This password is too weak: {hint} Add more words or characters."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[actix_web::test]
    async fn hashing_runs_at_a_lower_priority_than_pages() {
        // Field 19 of a stat line is the nice value.
        fn nice_of(stat: &str) -> i32 {
            let stat = std::fs::read_to_string(stat).unwrap();
            let after_name = &stat[stat.rfind(')').unwrap() + 2..];
            after_name.split(' ').nth(16).unwrap().parse::<i32>().unwrap()
        }
        let hasher = PasswordHasher::new(1);
        let nice = hasher.run(|| nice_of("/proc/thread-self/stat")).await.unwrap();
        // A test run under `nice -n 15` cannot go back up to 10.
        let expected = nice_of("/proc/self/stat").max(10);
        assert_eq!(nice, expected, "the hashing thread runs at nice {nice}");
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_new_password("Tr0ub4dor&3", "alice", None).unwrap_err().contains("at least 12"));
    }

    #[test]
    fn passwords_containing_the_username_are_refused() {
        let err = check_new_password("xQ9!alice-long-enough-zz", "Alice", None).unwrap_err();
        assert!(err.contains("username"), "{err}");
    }

    #[test]
    fn common_passwords_are_refused_as_weak() {
        assert!(check_new_password("password1234", "bob", None).unwrap_err().contains("too weak"));
    }

    #[test]
    fn a_long_random_passphrase_is_accepted() {
        check_new_password("correct horse battery staple 42", "bob", Some("bob@example.com")).unwrap();
    }

    #[actix_web::test]
    async fn when_every_slot_is_busy_a_request_gets_503_instead_of_queueing_forever() {
        let hasher = PasswordHasher::with_queue_wait(1, Duration::from_millis(1));
        let _busy = hasher.slots.clone().acquire_owned().await.unwrap();
        let err = hasher.hash(SecretString::from("some password here")).await.unwrap_err();
        assert!(matches!(err, AppError::Unavailable(_)), "{err:?}");
        drop(_busy);
        assert!(hasher.hash(SecretString::from("some password here")).await.is_ok());
    }

    #[actix_web::test]
    async fn hashing_runs_on_the_few_dedicated_threads_and_never_on_the_shared_pool() {
        // Argon2's 19 MiB stay in the arenas of the threads that hashed; on
        // the blocking pool's hundreds of threads a flood kept a gigabyte.
        let hasher = PasswordHasher::new(2);
        let mut names = std::collections::HashSet::new();
        for _ in 0..8 {
            let name = hasher.run(|| std::thread::current().name().map(str::to_owned)).await.unwrap();
            names.insert(name.unwrap_or_default());
        }
        assert!(names.iter().all(|n| n.starts_with("argon2-")), "{names:?}");
        assert!(names.len() <= 2, "{names:?}");
    }

    #[test]
    fn hashes_with_other_parameters_still_verify_by_argon2s_own_path() {
        let other = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8 * 1024, 1, 1, None).unwrap());
        let salt = SaltString::generate(&mut OsRng);
        let hash = other.hash_password(b"another password", &salt).unwrap().to_string();
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(verify_argon2(&parsed, b"another password"));
        assert!(!verify_argon2(&parsed, b"another passwore"));
        // And this app's own, through the reused memory, twice on one thread.
        let ours = hash_now("the right password!").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(verify_argon2(&parsed, b"the right password!"));
        assert!(!verify_argon2(&parsed, b"the wrong password!"));
        assert!(verify_argon2(&parsed, b"the right password!"));
    }

    #[actix_web::test]
    async fn a_hash_verifies_only_its_own_password() {
        let hasher = PasswordHasher::new(1);
        let hash = hasher.hash(SecretString::from("the right password!")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify(Some(hash.clone()), SecretString::from("the right password!")).await.unwrap());
        assert!(!hasher.verify(Some(hash), SecretString::from("the wrong password")).await.unwrap());
        assert!(!hasher.verify(None, SecretString::from("anything")).await.unwrap());
        assert!(!hasher.verify(Some("garbage".into()), SecretString::from("garbage")).await.unwrap());
    }
}
