//! `spawn_app()` and the pieces tests share.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use questline::db::PgPool;
use questline::{settings, Application, Settings};
use sha2::{Digest, Sha256};
use url::Url;

/// The PostgreSQL server tests create their databases on.
fn server_url() -> Url {
    let raw =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    Url::parse(&raw).expect("DATABASE_URL is a URL")
}

pub fn database_url(name: &str) -> String {
    let mut url = server_url();
    url.set_path(name);
    // Loopback needs no TLS, and OpenSSL's exit-time clean-up racing the
    // app's still-running pool threads can abort the test process.
    if !url.query_pairs().any(|(k, _)| k == "sslmode") {
        url.query_pairs_mut().append_pair("sslmode", "disable");
    }
    url.to_string()
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The template's name changes whenever a migration does, so a stale
/// template from an older checkout is never cloned.
fn template_name() -> String {
    let mut hasher = Sha256::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut entries: Vec<_> = walk(&dir);
    entries.sort();
    for path in entries {
        hasher.update(path.strip_prefix(&dir).unwrap().to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&path).unwrap());
    }
    format!("questline_template_{}", &hex::encode(hasher.finalize())[..16])
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Creates the migrated template once per server. An advisory lock makes
/// concurrent test processes wait for the one that builds it; the rename at
/// the end publishes it only when complete.
fn ensure_template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = template_name();
        let mut admin = PgConnection::establish(&database_url("postgres"))
            .expect("connect to PostgreSQL: run the tests with ./scripts/test");
        diesel::sql_query("SELECT pg_advisory_lock(727274)").execute(&mut admin).unwrap();
        if !database_exists(&mut admin, &name) {
            let building = format!("{name}_building");
            diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"))
                .execute(&mut admin)
                .unwrap();
            diesel::sql_query(format!("CREATE DATABASE \"{building}\"")).execute(&mut admin).unwrap();
            {
                let mut conn = PgConnection::establish(&database_url(&building)).unwrap();
                questline::models::migrate(&mut conn).expect("migrations apply to an empty database");
            }
            diesel::sql_query(format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\""))
                .execute(&mut admin)
                .unwrap();
        }
        diesel::sql_query("SELECT pg_advisory_unlock(727274)").execute(&mut admin).unwrap();
        name
    })
}

fn database_exists(conn: &mut PgConnection, name: &str) -> bool {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Int4)]
        #[allow(dead_code)]
        one: i32,
    }
    diesel::sql_query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(name)
        .load::<Found>(conn)
        .map(|rows| !rows.is_empty())
        .unwrap()
}

/// A fresh database cloned from the migrated template.
pub fn create_test_database() -> String {
    let template = ensure_template();
    let name = format!("questline_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(&database_url("postgres")).unwrap();
    diesel::sql_query(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"")).execute(&mut admin).unwrap();
    name
}

/// A fresh, empty database (no migrations applied); returns its URL.
pub fn create_empty_database() -> String {
    let name = format!("questline_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(&database_url("postgres")).unwrap();
    diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).unwrap();
    database_url(&name)
}

/// A running app and a browser-like client for it.
pub struct TestApp {
    pub address: String,
    pub db_name: String,
    pub pool: PgPool,
    pub settings: Settings,
    /// Keeps cookies between requests and never follows redirects, so tests
    /// can assert where each one points.
    pub client: reqwest::Client,
    /// Everything the app delivered over SMTP.
    pub mail: MailServer,
    /// The environment the app was built from, for a `questline` process
    /// (a worker) that must share its database, Redis and secrets.
    pub env: HashMap<String, String>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request sent")
    }

    /// Opens `page` with `client`, takes the form's CSRF token, and posts
    /// `fields` to `action` as a browser would.
    pub async fn submit_with(
        &self,
        client: &reqwest::Client,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let doc = html(client.get(self.url(page)).send().await.unwrap()).await;
        let token = csrf_token(&doc).unwrap_or_else(|| panic!("{page} has a form with a CSRF token"));
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &token));
        client.post(self.url(action)).form(&form).send().await.unwrap()
    }

    /// Opens `page`, takes its CSRF token, and posts `fields` (names may
    /// repeat) and an optional file `(field, name, bytes)` as multipart.
    pub async fn submit_multipart(
        &self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str, Vec<u8>)>,
    ) -> reqwest::Response {
        self.submit_multipart_with(&self.client, page, action, fields, file).await
    }

    /// [`TestApp::submit_multipart`] with another client.
    pub async fn submit_multipart_with(
        &self,
        client: &reqwest::Client,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str, Vec<u8>)>,
    ) -> reqwest::Response {
        let doc = html(client.get(self.url(page)).send().await.unwrap()).await;
        let token = csrf_token(&doc).unwrap_or_else(|| panic!("{page} has a form with a CSRF token"));
        let mut form = reqwest::multipart::Form::new().text("csrf_token", token);
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        if let Some((field, name, bytes)) = file {
            form = form.part(field.to_string(), reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()));
        }
        client.post(self.url(action)).multipart(form).send().await.unwrap()
    }

    /// Files stored under the app's upload directory.
    pub fn stored_files(&self) -> Vec<std::path::PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.settings.upload_dir, &mut out);
        out
    }

    /// [`TestApp::submit_with`] with the app's own client.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.submit_with(&self.client, page, action, fields).await
    }

    /// Fills in and posts the registration form with `client`.
    pub async fn register_with(
        &self,
        client: &reqwest::Client,
        username: &str,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        let fields =
            [("username", username), ("email", email), ("password", password), ("password_confirmation", password)];
        self.submit_with(client, "/register", "/register", &fields).await
    }

    /// [`TestApp::register_with`] with the app's own client.
    pub async fn register(&self, username: &str, email: &str, password: &str) -> reqwest::Response {
        self.register_with(&self.client, username, email, password).await
    }

    /// Registers through the page and follows the emailed link.
    pub async fn register_verified(&self, username: &str, email: &str, password: &str) {
        self.register_verified_with(&self.client, username, email, password).await
    }

    /// [`TestApp::register_verified`] in another browser.
    pub async fn register_verified_with(&self, client: &reqwest::Client, username: &str, email: &str, password: &str) {
        let res = self.register_with(client, username, email, password).await;
        assert_eq!(res.status(), 303, "registration of {username} succeeds");
        let mail = self.mail.next_email().await;
        assert_eq!(mail.to, email);
        let link = mail.link("/verify-email/");
        let res =
            self.submit_with(client, &link, "/verify-email", &[("token", link.rsplit('/').next().unwrap())]).await;
        assert_eq!(res.status(), 303, "verification succeeds");
    }

    /// Signs `client` in; returns the response of the form post.
    pub async fn login_with(&self, client: &reqwest::Client, login: &str, password: &str) -> reqwest::Response {
        self.submit_with(client, "/login", "/login", &[("login", login), ("password", password)]).await
    }

    /// Polls the database until `check` returns something, off the async
    /// thread (the app's workers run on it); fails after a minute.
    pub async fn wait_for<T: Send + 'static>(
        &self,
        what: &str,
        check: impl Fn(&mut PgConnection) -> Option<T> + Send + Clone + 'static,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (pool, check) = (self.pool.clone(), check.clone());
            let found = actix_web::web::block(move || check(&mut pool.get().unwrap())).await.unwrap();
            if let Some(v) = found {
                return v;
            }
            assert!(Instant::now() < deadline, "waited a minute for {what}");
            tokio::task::yield_now().await;
        }
    }

    /// Starts `questline worker` as a separate process on this app's
    /// database, Redis and secrets (killed when the handle drops).
    pub fn spawn_worker_process(&self) -> WorkerProcess {
        self.spawn_process("worker")
    }

    /// Starts `questline <command>` (`worker`, or `serve` on a free port
    /// running its job loops) as a separate process with this app's
    /// environment (killed when the handle drops).
    pub fn spawn_process(&self, command: &str) -> WorkerProcess {
        let shown = std::env::var("TEST_LOG").is_ok();
        let log = || if shown { Stdio::inherit() } else { Stdio::null() };
        let child = Command::new(env!("CARGO_BIN_EXE_questline"))
            .arg(command)
            .env_clear()
            .envs(&self.env)
            .env("BIND_ADDRESS", "127.0.0.1:0")
            .env("RUN_WORKER", "true")
            .env("LOG_FORMAT", "pretty")
            .stdout(log())
            .stderr(log())
            .spawn()
            .expect("the questline binary starts");
        WorkerProcess { child }
    }

    /// Drops this app's database out from under it, as an outage would.
    pub fn drop_database(&self) {
        let mut admin = PgConnection::establish(&database_url("postgres")).unwrap();
        diesel::sql_query(format!("DROP DATABASE \"{}\" WITH (FORCE)", self.db_name)).execute(&mut admin).unwrap();
    }
}

/// Environment for one test app: fresh secrets, its own database and Redis
/// namespace, a free port.
pub fn test_env() -> HashMap<String, String> {
    let mut env: HashMap<String, String> = settings::generate_secrets()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    env.insert("REDIS_URL".into(), redis_url());
    env.insert("REDIS_NAMESPACE".into(), format!("qltest:{}", uuid::Uuid::new_v4().simple()));
    env.insert("BIND_ADDRESS".into(), "127.0.0.1:0".into());
    env.insert("STATIC_DIR".into(), concat!(env!("CARGO_MANIFEST_DIR"), "/static").into());
    env.insert("QUESTLINE_ENV".into(), "production".into());
    let uploads = std::env::temp_dir().join(format!("questline-test-uploads-{}", uuid::Uuid::new_v4().simple()));
    env.insert("UPLOAD_DIR".into(), uploads.to_string_lossy().into_owned());
    env
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app after `customise` has adjusted its environment.
pub async fn spawn_app_with(customise: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        questline::telemetry::init(questline::settings::LogFormat::Pretty);
    }
    let db_name = create_test_database();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mail = MailServer::start();
    let mut env = test_env();
    env.insert("SMTP_URL".into(), format!("smtp://127.0.0.1:{}", mail.port));
    env.insert("DATABASE_URL".into(), database_url(&db_name));
    env.insert("PUBLIC_BASE_URL".into(), format!("http://127.0.0.1:{port}"));
    customise(&mut env);
    // A fake Steam serves the OpenID provider beside the Web API.
    if let (Some(base), false) = (env.get("STEAM_API_BASE_URL").cloned(), env.contains_key("STEAM_OPENID_URL")) {
        env.insert(
            "STEAM_OPENID_URL".into(),
            format!("{}{}", base.trim_end_matches('/'), questline::steam::fake::OPENID_PATH),
        );
    }
    let settings = Settings::from_lookup(|k| env.get(k).cloned()).expect("test settings are valid");
    env.insert("PUBLIC_BASE_URL".into(), settings.public_base_url.to_string());
    let app = Application::build_with_listener(settings.clone(), listener).await.expect("app starts");
    let pool = app.pool().clone();
    actix_web::rt::spawn(app.run_until_stopped());
    let client = new_client();
    TestApp { address: format!("http://127.0.0.1:{port}"), db_name, pool, settings, client, mail, env }
}

/// A fresh "browser": its own cookie jar, redirects not followed.
pub fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
        .build()
        .unwrap()
}

/// A Redis server of the test's own, for tests that stop it.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(port)
    }

    /// Starts a server on `port` (again, after [`RedisServer::stop`]). It
    /// keeps nothing on disk: a restart comes back empty.
    pub fn start_on(port: u16) -> Self {
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_owned());
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (install it, or run ./scripts/test)");
        let server = RedisServer { child, port };
        server.wait_until_answering();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Polls PING: readiness is a condition to wait for, not a duration.
    fn wait_until_answering(&self) {
        let client = redis::Client::open(self.url()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200)) {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::yield_now();
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A page body, parsed for CSS selectors.
pub async fn html(res: reqwest::Response) -> scraper::Html {
    scraper::Html::parse_document(&res.text().await.unwrap())
}

/// The text of the first element matching `selector`.
pub fn text_of(doc: &scraper::Html, selector: &str) -> Option<String> {
    let sel = scraper::Selector::parse(selector).unwrap();
    doc.select(&sel).next().map(|e| e.text().collect::<String>().trim().to_owned())
}

/// The CSRF token of the first form on a page.
pub fn csrf_token(doc: &scraper::Html) -> Option<String> {
    let sel = scraper::Selector::parse("input[name=csrf_token]").unwrap();
    doc.select(&sel).next().and_then(|e| e.value().attr("value")).map(str::to_owned)
}

/// The `Location` header of a redirect.
pub fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct ReceivedEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl ReceivedEmail {
    /// The path of the first link in the text part that contains `marker`.
    pub fn link(&self, marker: &str) -> String {
        let start = self.text.find("http").expect("a link in the email");
        let url = self.text[start..].split_whitespace().next().unwrap();
        assert!(url.contains(marker), "{url} is a {marker} link");
        let parsed = Url::parse(url).unwrap();
        parsed.path().to_owned()
    }
}

/// A real SMTP server (mailin) on a free local port.
pub struct MailServer {
    pub port: u16,
    received: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>>,
}

#[derive(Clone)]
struct Collector {
    current: Vec<u8>,
    out: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
}

impl mailin_embedded::Handler for Collector {
    fn data_start(&mut self, _: &str, _: &str, _: bool, _: &[String]) -> mailin_embedded::Response {
        self.current.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        let _ = self.out.send(std::mem::take(&mut self.current));
        mailin_embedded::response::OK
    }
}

impl MailServer {
    pub fn start() -> Self {
        Self::start_on(0)
    }

    /// On a given port (0 for any free one).
    pub fn start_on(port: u16) -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut server = mailin_embedded::Server::new(Collector { current: Vec::new(), out: tx });
        server.with_name("mail.test").with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        MailServer { port, received: tokio::sync::Mutex::new(rx) }
    }

    /// Waits for the next delivered message (the app's outbox worker sends
    /// it); fails after 20 seconds.
    pub async fn next_email(&self) -> ReceivedEmail {
        let raw = tokio::time::timeout(Duration::from_secs(20), self.received.lock().await.recv())
            .await
            .expect("an email arrives within 20 s")
            .expect("mail server running");
        parse_email(&raw)
    }

    /// True when nothing more was delivered; used after `next_email` has
    /// shown the worker is running.
    pub async fn is_empty(&self) -> bool {
        self.received.lock().await.try_recv().is_err()
    }
}

fn parse_email(raw: &[u8]) -> ReceivedEmail {
    use mailparse::MailHeaderMap;
    let parsed = mailparse::parse_mail(raw).expect("a well-formed message");
    let part = |mime: &str| {
        parsed.subparts.iter().find(|p| p.ctype.mimetype == mime).map(|p| p.get_body().unwrap()).unwrap_or_default()
    };
    ReceivedEmail {
        to: parsed.headers.get_first_value("To").unwrap_or_default(),
        subject: parsed.headers.get_first_value("Subject").unwrap_or_default(),
        text: part("text/plain"),
        html: part("text/html"),
    }
}

/// A `questline worker` process of a test.
pub struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    /// SIGKILL: the process dies mid-work, as on a crash or an OOM kill.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as a deploy or `systemctl stop` sends; the exit status once
    /// the process has ended (fails after a minute).
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill runs");
        assert!(sent.success(), "SIGTERM sent");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("the worker's status") {
                return status;
            }
            assert!(Instant::now() < deadline, "the worker did not exit within a minute of SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PostgreSQL server of the test's own, for tests that stop it: a fresh
/// cluster in a temporary directory (owned by `postgres` when the tests run
/// as root, which PostgreSQL refuses to run as).
pub struct PostgresServer {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    pub port: u16,
    as_postgres: bool,
}

impl PostgresServer {
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries (run ./scripts/test, which installs them)")
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql");
        let as_postgres = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
        let data = std::env::temp_dir().join(format!("questline-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data).unwrap();
        if as_postgres {
            let ok = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&data).status().unwrap().success();
            assert!(ok, "chown of the private cluster's directory");
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = PostgresServer { bin, data, port, as_postgres };
        let data_arg = server.data.to_string_lossy().into_owned();
        server.run("initdb", &["-D", &data_arg, "-U", "questline", "--auth=trust", "-E", "UTF8", "--locale=C"]);
        server.start_again();
        let mut admin = PgConnection::establish(&server.url("postgres")).unwrap();
        diesel::sql_query("CREATE DATABASE questline").execute(&mut admin).unwrap();
        server
    }

    /// One of the server's tools, run as `postgres` when the tests run as root.
    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool).args(args).stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "{tool} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts the cluster (again) on the same port, waiting until it accepts connections.
    pub fn start_again(&self) {
        let data = self.data.to_string_lossy().into_owned();
        let options = format!("-p {} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", self.port);
        let log = self.data.join("server.log").to_string_lossy().into_owned();
        self.run("pg_ctl", &["-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start"]);
    }

    /// Stops the cluster at once (fast shutdown: sessions are cut).
    pub fn stop(&self) {
        let data = self.data.to_string_lossy().into_owned();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://questline@127.0.0.1:{}/{db}?sslmode=disable", self.port)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let data = self.data.to_string_lossy().into_owned();
        let _ = self.command("pg_ctl").args(["-D", &data, "-m", "immediate", "-w", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Every `.rs` file below `dir`, sorted: for the tests that read the source.
pub fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    files
}
