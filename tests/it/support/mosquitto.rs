//! A real mosquitto (Debian's package) on free loopback ports, for the MQTT
//! tests: a plain listener and a TLS one (test CA, certificate for
//! localhost), a password file and no anonymous access, persistence saved
//! on every change so retained messages outlive a restart, even after
//! SIGKILL. What was published is seen through `mosquitto_sub`.

use super::certs::make_certificates;
use super::relay::{free_port, wait_for, TestDir, PATIENCE};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The one user in the password file. The password has the characters a
/// URL must escape, so `mqtt://` parsing is tested on the way.
pub const USER: &str = "relay";
pub const PASSWORD: &str = "p@ss:w/rd";
/// PASSWORD %-encoded, for a URL.
pub const PASSWORD_IN_URL: &str = "p%40ss%3Aw%2Frd";

pub struct Mosquitto {
    dir: TestDir,
    port: u16,
    tls_port: u16,
    child: Option<Child>,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        let dir = TestDir::new("mosquitto");
        let path = dir.path();
        make_certificates(path);
        let out = Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(path.join("passwd"))
            .args([USER, PASSWORD])
            .output()
            .expect("mosquitto_passwd (make test-deps)");
        assert!(
            out.status.success(),
            "mosquitto_passwd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (port, tls_port) = (free_port(), free_port());
        let p = |name: &str| path.join(name).display().to_string();
        let config = format!(
            "# Run as root (CI is), mosquitto would switch to user mosquitto
# and could no longer read these files; the line is ignored otherwise.
user root
per_listener_settings false
allow_anonymous false
password_file {passwd}
persistence true
persistence_location {dir}/
# Save after every change, so a SIGKILL loses no retained message.
autosave_on_changes true
autosave_interval 1
log_dest file {log}
log_type all
listener {port} 127.0.0.1
listener {tls_port} 127.0.0.1
cafile {ca}
certfile {cert}
keyfile {key}
",
            passwd = p("passwd"),
            dir = path.display(),
            log = p("mosquitto.log"),
            ca = p("ca.pem"),
            cert = p("server.pem"),
            key = p("server.key"),
        );
        std::fs::write(path.join("mosquitto.conf"), config).unwrap();
        let mut broker = Mosquitto {
            dir,
            port,
            tls_port,
            child: None,
        };
        broker.run();
        broker
    }

    /// Starts mosquitto on this broker's ports and waits for both.
    fn run(&mut self) {
        assert!(self.child.is_none(), "mosquitto is already running");
        let stderr = std::fs::File::create(self.dir.path().join("stderr.txt")).unwrap();
        let child = Command::new(broker_program())
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("mosquitto (make test-deps)");
        self.child = Some(child);
        for port in [self.port, self.tls_port] {
            wait_for("mosquitto to listen", || {
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!(
                        "mosquitto exited ({status}): {}{}",
                        self.read("stderr.txt"),
                        self.log()
                    );
                }
                TcpStream::connect(("127.0.0.1", port)).ok()
            });
        }
    }

    fn signal(&mut self, signal: &str) {
        let child = self.child.as_ref().expect("mosquitto is not running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }

    /// SIGTERM: mosquitto saves its database and exits.
    pub fn stop(&mut self) {
        self.signal("-TERM");
        let _ = self.child.take().unwrap().wait();
    }

    /// SIGKILL: gone at once, sockets closed by the kernel, no goodbye.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("mosquitto is not running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops it if it runs, then starts it again on the same ports with the
    /// same database.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.run();
    }

    /// Stops it, throws its database away and starts it again: a broker
    /// without persistence restarting, which forgets every retained
    /// message.
    pub fn restart_forgetting(&mut self) {
        self.stop();
        let db = self.dir.path().join("mosquitto.db");
        std::fs::remove_file(&db).expect("mosquitto saves its database when stopped");
        self.run();
    }

    /// SIGSTOP: the kernel still accepts connections and bytes, but the
    /// broker answers nothing until `resume`.
    pub fn pause(&mut self) {
        self.signal("-STOP");
    }

    pub fn resume(&mut self) {
        self.signal("-CONT");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// The CA that signed the TLS listener's certificate (for localhost).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// The broker's log so far (log_type all: every packet in and out).
    pub fn log(&self) -> String {
        self.read("mosquitto.log")
    }

    /// Waits until the broker's log has a line containing `text`.
    pub fn wait_for_log(&self, text: &str) {
        wait_for(&format!("{text:?} in the mosquitto log"), || {
            self.log().contains(text).then_some(())
        });
    }

    /// Waits until the broker's saved database holds `bytes` (a retained
    /// payload, stored as is). mosquitto saves after every change, but
    /// only after the PUBACK, so a SIGKILL right after a publish may lose
    /// it; call this first when a test needs it to survive. The database
    /// is written to a `.new` file and renamed, so what is read is whole.
    pub fn wait_persisted(&self, bytes: &[u8]) {
        let db = self.dir.path().join("mosquitto.db");
        wait_for("mosquitto to save its database", || {
            let saved = std::fs::read(&db).unwrap_or_default();
            saved.windows(bytes.len()).any(|w| w == bytes).then_some(())
        });
    }

    fn sub_command(&self, topic: &str, client_id: &str) -> Command {
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-u", USER, "-P", PASSWORD, "-i", client_id, "-v", "-t", topic,
            ])
            .stdin(Stdio::null());
        cmd
    }

    /// Subscribes to `topic` and returns the first `count` messages as
    /// "topic payload" lines, or fewer if `secs` pass first. Retained
    /// messages come first: this is what a late subscriber sees.
    pub fn sub(&self, topic: &str, count: usize, secs: u32) -> Vec<String> {
        let out = self
            .sub_command(topic, &unique_id("sub"))
            .args(["-C", &count.to_string(), "-W", &secs.to_string()])
            .output()
            .expect("mosquitto_sub (make test-deps)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// A subscriber that keeps running and collecting, for what is
    /// published later (a Will). Returns once the broker has acknowledged
    /// the subscription.
    pub fn subscriber(&self, topic: &str) -> Subscriber {
        let id = unique_id("watch");
        let file = self.dir.path().join(format!("{id}.txt"));
        let child = self
            .sub_command(topic, &id)
            .stdout(std::fs::File::create(&file).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub (make test-deps)");
        let subscriber = Subscriber { child, file };
        self.wait_for_log(&format!("Sending SUBACK to {id}"));
        subscriber
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // A paused broker ignores SIGTERM but not SIGKILL.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Debian puts the broker in /usr/sbin, which a non-root PATH may lack.
fn broker_program() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("mosquitto"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/mosquitto"))
}

fn unique_id(prefix: &str) -> String {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct Subscriber {
    child: Child,
    file: PathBuf,
}

impl Subscriber {
    /// The "topic payload" lines received so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until `line` has been received; panics with what was after
    /// PATIENCE.
    pub fn wait_for_line(&self, line: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.lines().iter().any(|l| l == line) {
            assert!(
                Instant::now() < deadline,
                "no {line:?} received; got {:?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
