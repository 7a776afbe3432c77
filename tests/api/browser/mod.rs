//! Journeys in a real browser: Debian's Chromium driven through
//! chromedriver, against the real app from `spawn_app()`.
//!
//! Every page a journey visits is checked at 1280x900 and at 390x844: no
//! horizontal scrolling, no console error (a CSP violation is one), no
//! broken image, and no serious or critical axe-core violation. A
//! screenshot of each goes to `target/browser/`.

mod journeys;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine;
use serde_json::{json, Value};
use thirtyfour::prelude::*;
use thirtyfour::{ChromiumLikeCapabilities, LoggingPrefsLogLevel};

use crate::helpers::TestApp;

/// The two screens every page must work on.
pub const VIEWPORTS: [(u32, u32); 2] = [(1280, 900), (390, 844)];

fn env_path(name: &str, fallback: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fallback.to_owned())
}

/// A chromedriver process and one Chromium session, closed on drop.
pub struct Browser {
    /// Never dropped: thirtyfour's drop would block this single-threaded
    /// runtime for two minutes; [`Browser::finish`] quits it instead, and
    /// on a failure chromedriver is killed.
    pub driver: std::mem::ManuallyDrop<WebDriver>,
    chromedriver: Child,
    base: String,
    /// What the checks found, page by page; asserted empty at the end.
    pub problems: Vec<String>,
    /// The pages checked, with their screenshots.
    pub checked: Vec<String>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Where the screenshots go.
pub fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    /// Starts chromedriver and a headless Chromium pointed at `app`.
    pub async fn start(app: &TestApp) -> Browser {
        let port = free_port();
        let mut chromedriver = Command::new(env_path("CHROMEDRIVER_BIN", "chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; ./scripts/test installs it)");
        // It says so on stdout once it listens.
        let stdout = chromedriver.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let line = lines.next().expect("chromedriver exited").unwrap();
            if line.contains("started successfully") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});

        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&env_path("CHROME_BIN", "/usr/bin/chromium")).unwrap();
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--lang=en-GB",
        ] {
            caps.add_arg(arg).unwrap();
        }
        caps.set_browser_log_level(LoggingPrefsLogLevel::All).unwrap();
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps).await.expect("a Chromium session");
        Browser {
            driver: std::mem::ManuallyDrop::new(driver),
            chromedriver,
            base: app.address.clone(),
            problems: Vec::new(),
            checked: Vec::new(),
        }
    }

    /// The app's URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Opens `path` at the desktop size.
    pub async fn goto(&self, path: &str) {
        self.viewport(VIEWPORTS[0]).await;
        self.driver.goto(self.url(path)).await.unwrap();
    }

    /// The path (and query) of the current page.
    pub async fn path(&self) -> String {
        let url = self.driver.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    async fn cdp(&self, cmd: &str, args: Value) -> Value {
        self.driver.cdp().send_raw(cmd, args).await.unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    /// Makes the page's viewport exactly `width` x `height` CSS pixels (a
    /// phone's when narrow).
    pub async fn viewport(&self, (width, height): (u32, u32)) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600 }),
        )
        .await;
    }

    /// Emulates the system's colour scheme (`light` or `dark`).
    pub async fn color_scheme(&self, scheme: &str) {
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
        )
        .await;
    }

    /// Types into the field `css` (after clearing it).
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.driver.find(By::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Clicks `css` (scrolled into view first), and when that loads
    /// another page, waits until it has.
    pub async fn click(&self, css: &str) {
        let el = self.driver.find(By::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        el.scroll_into_view().await.unwrap();
        let page = self.driver.find(By::Tag("html")).await.unwrap();
        let navigates = el.tag_name().await.unwrap() == "button" || el.tag_name().await.unwrap() == "a";
        el.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
        if navigates {
            // The old page's root goes stale once the new page replaced it.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while page.tag_name().await.is_ok() {
                assert!(std::time::Instant::now() < deadline, "clicking {css} loaded no page");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            loop {
                let state = self.eval("return document.readyState").await;
                if state == "complete" {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "the page after {css} never finished loading");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }

    /// The text of `css`.
    pub async fn text(&self, css: &str) -> String {
        self.driver.find(By::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
    }

    /// Waits (up to 20 s) until the text of `css` contains `text`: for
    /// what the page's own script updates.
    pub async fn wait_for_text(&self, css: &str, text: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let now = match self.driver.find(By::Css(css)).await {
                Ok(el) => el.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if now.contains(text) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{css} still says {now:?}, not {text:?}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Picks these values in the multiple select `css`.
    pub async fn select_all(&self, css: &str, values: &[&str]) {
        for v in values {
            self.click(&format!("{css} option[value='{v}']")).await;
        }
    }

    /// Chooses `file` in the file field `css`.
    pub async fn upload(&self, css: &str, file: &std::path::Path) {
        let field = self.driver.find(By::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        field.send_keys(file.to_string_lossy().as_ref()).await.unwrap();
    }

    /// Whether `css` is on the page.
    pub async fn has(&self, css: &str) -> bool {
        !self.driver.find_all(By::Css(css)).await.unwrap().is_empty()
    }

    pub async fn eval(&self, script: &str) -> Value {
        self.driver.execute(script, Vec::new()).await.unwrap().json().clone()
    }

    /// Checks the current page at both sizes and keeps a screenshot of each.
    /// Problems are collected; [`Browser::finish`] asserts there are none.
    pub async fn check(&mut self, name: &str) {
        let path = self.path().await;
        // Console messages so far belong to this page.
        self.console_errors(name, &path).await;
        for vp in VIEWPORTS {
            self.viewport(vp).await;
            let label = format!("{name} at {}x{}", vp.0, vp.1);
            let widths = self.eval("return [document.documentElement.scrollWidth, window.innerWidth]").await;
            let (scroll, inner) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
            if scroll > inner {
                let wide = self
                    .eval(
                        "return [...document.querySelectorAll('body *')]
                           .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                           .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                             + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : ''))",
                    )
                    .await;
                self.problems.push(format!("{label}: {scroll}px wide in a {inner}px window: {wide}"));
            }
            // Lazy images below the fold load now, so every one is judged.
            self.eval("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')").await;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while self.eval("return [...document.images].every(i => i.complete)").await != Value::Bool(true)
                && std::time::Instant::now() < deadline
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let broken = self
                .eval(
                    "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0)
                       .map(i => i.getAttribute('src'))",
                )
                .await;
            if broken.as_array().is_some_and(|a| !a.is_empty()) {
                self.problems.push(format!("{label}: broken images {broken}"));
            }
            for v in self.axe().await {
                self.problems.push(format!("{label}: axe: {v}"));
            }
            self.screenshot(&format!("{name}-{}x{}", vp.0, vp.1)).await;
        }
        // The dark scheme has its own colours: its contrast is checked too.
        self.viewport(VIEWPORTS[0]).await;
        self.color_scheme("dark").await;
        for v in self.axe().await {
            self.problems.push(format!("{name} in dark mode: axe: {v}"));
        }
        self.screenshot(&format!("{name}-dark-{}x{}", VIEWPORTS[0].0, VIEWPORTS[0].1)).await;
        self.color_scheme("light").await;
        self.console_errors(name, &path).await;
        self.checked.push(name.to_owned());
    }

    /// Console errors since the last look. The browser reports an error
    /// page's own status as one; that is the page working, not a fault.
    async fn console_errors(&mut self, name: &str, path: &str) {
        let own = format!("{} - Failed to load resource: the server responded with a status of", self.url(path));
        for entry in self.driver.get_log("browser").await.unwrap() {
            if entry.level == "SEVERE" && !entry.message.starts_with(&own) {
                self.problems.push(format!("{name} ({path}): console error: {}", entry.message));
            }
        }
    }

    /// Serious and critical axe-core violations on the page.
    async fn axe(&self) -> Vec<String> {
        let path = std::env::var("AXE_CORE_JS").unwrap_or_else(|_| {
            format!("{}/tests/browser/node_modules/axe-core/axe.min.js", env!("CARGO_MANIFEST_DIR"))
        });
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("axe-core at {path} ({e}): ./scripts/test installs it"));
        self.driver.execute(&source, Vec::new()).await.unwrap();
        let found = self
            .driver
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then(r => done(
                   r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
                       + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))));",
                Vec::new(),
            )
            .await
            .unwrap();
        found.convert::<Vec<String>>().unwrap()
    }

    /// Saves the whole page as `target/browser/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        let shot = self.cdp("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true })).await;
        let data = shot["data"].as_str().expect("PNG data");
        let png = base64::engine::general_purpose::STANDARD.decode(data).unwrap();
        std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
    }

    /// Closes the browser, then asserts that no check found a problem.
    pub async fn finish(self) {
        // Quitting here, not on drop: thirtyfour's drop would block this
        // single-threaded runtime.
        std::mem::ManuallyDrop::into_inner(self.driver.clone()).quit().await.unwrap();
        assert!(self.problems.is_empty(), "{} problem(s):\n{}", self.problems.len(), self.problems.join("\n"));
    }
}
