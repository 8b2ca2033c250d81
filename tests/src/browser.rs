//! A real headless Chromium for the dashboard's tests, driven over WebDriver: Debian's
//! `chromedriver` (package `chromium-driver`, installed by scripts/setup) started on a free
//! loopback port, and `fantoccini` as the client. No browser is a failure, never a skip.
//!
//! Waits poll the page (every `POLL`) up to `WAIT`: the page updates live, so an element
//! found a moment ago may have been drawn again — the helpers find it again and retry.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a test waits for the page to show something: a run of a few probe tasks ends
/// in well under a second; the margin is for a loaded CI machine.
pub const WAIT: Duration = Duration::from_secs(30);
/// How often a wait looks at the page again.
const POLL: Duration = Duration::from_millis(50);
/// How long chromedriver may take to listen.
const DRIVER_START: Duration = Duration::from_secs(20);

/// A chromedriver process and a browser session on it.
pub struct Browser {
    driver: Child,
    pub client: Client,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("its address").port()
}

/// Where screenshots go (CI keeps them as artifacts): `target/dashboard-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = crate::repo().join("target").join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

impl Browser {
    /// Start chromedriver (`SLUICE_CHROMEDRIVER` or `chromedriver` on PATH) and a headless
    /// Chromium at 1280×800.
    pub async fn start() -> Browser {
        let program = std::env::var("SLUICE_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = free_port();
        let driver = Command::new(&program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `{program}` ({e}): the dashboard tests need Chromium and its WebDriver — \
                     run scripts/setup, or `apt-get install chromium chromium-driver`"
                )
            });
        let mut args = vec!["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"];
        args.push("--window-size=1280,800");
        let mut options = json!({ "args": args });
        if let Ok(bin) = std::env::var("SLUICE_CHROMIUM") {
            options["binary"] = json!(bin);
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + DRIVER_START;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => panic!("no WebDriver session from `{program}` on {url}: {e}"),
            }
        };
        Browser { driver, client }
    }

    /// Run `script` (a function body) in the page; its return value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Run `script` asynchronously: it calls its last argument with the result.
    pub async fn js_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute_async(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Wait until `expr` (a JavaScript expression) is truthy; its value.
    pub async fn until(&self, expr: &str, what: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        let script = format!("try {{ return ({expr}) || null; }} catch (e) {{ return null; }}");
        loop {
            let v = self.js(&script, vec![]).await;
            if !v.is_null() && v != json!(false) {
                return v;
            }
            if Instant::now() > deadline {
                let text = self.js("return document.body.innerText.slice(0, 3000)", vec![]).await;
                self.screenshot(&format!("FAILED-{}", what.replace(' ', "-"))).await;
                panic!("the page never showed {what} (`{expr}`); it shows:\n{}", text.as_str().unwrap_or(""));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The text of the first element matching `css`, once there is one.
    pub async fn text(&self, css: &str) -> String {
        let expr = format!("document.querySelector({}) && document.querySelector({0}).textContent", json!(css));
        self.until(&expr, css).await.as_str().unwrap_or_default().to_string()
    }

    /// Whether an element matches `css` now.
    pub async fn exists(&self, css: &str) -> bool {
        self.js(&format!("return !!document.querySelector({})", json!(css)), vec![]).await == json!(true)
    }

    /// Click the element matching `css` as a user would (WebDriver's click: it must be
    /// visible and not covered), finding it again if the page drew it anew meanwhile.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let clicked = match self.client.find(Locator::Css(css)).await {
                Ok(el) => el.click().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match clicked {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("cannot click `{css}`: {e}"),
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Replace the value of the input matching `css` by typing `text`.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.until(&format!("document.querySelector({})", json!(css)), css).await;
        let el = self.client.find(Locator::Css(css)).await.expect("input");
        el.clear().await.expect("clear");
        if !text.is_empty() {
            el.send_keys(text).await.expect("type");
        }
    }

    /// Go to `url` (a page of the dashboard).
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// Save a PNG of the window as `target/dashboard-screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(screenshot_dir().join(format!("{name}.png")), png);
        }
    }

    /// End the session (the browser quits); chromedriver ends when this is dropped.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
