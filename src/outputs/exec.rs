//! The command hook: runs a program for each measure group, never through
//! a shell, with the JSON object on stdin and handy environment variables.
//! A non-zero exit or a timeout means "not delivered": the group waits in
//! the outbox and the hook is tried again later.

use super::Sink;
use crate::error::{Error, Result};
use crate::record::RecordView;
use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// Hook output beyond this is dropped from the log, not buffered.
const MAX_OUTPUT: u64 = 64 * 1024;
/// After the hook exits, how long to wait for the rest of its output.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct ExecHook {
    pub program: String,
    pub args: Vec<String>,
    pub timeout: Duration,
}

/// `°C` → `C`, `m/s` → `M_S`, `%` → `PERCENT`: units as they can stand in an
/// environment variable name.
fn unit_suffix(unit: &str) -> String {
    let spelled = unit.replace('%', "percent").replace('°', "");
    let mut out = String::new();
    for c in spelled.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// Pure: the environment a hook gets for one record line, e.g.
/// `WITHINGS_USERID`, `WITHINGS_DATE`, `WITHINGS_ATTRIB`,
/// `WITHINGS_WEIGHT_KG`, `WITHINGS_MUSCLE_MASS_LEFT_ARM_KG`.
pub fn hook_env(line: &str) -> Result<Vec<(String, String)>> {
    let record = RecordView::parse(line)?;
    let mut env = vec![
        ("WITHINGS_USERID".to_string(), record.userid.clone()),
        ("WITHINGS_GRPID".to_string(), record.grpid.to_string()),
        ("WITHINGS_DATE".to_string(), record.date.to_string()),
        ("WITHINGS_TIME".to_string(), record.time.clone()),
    ];
    // So a hook can set a guest's weigh-in (1, facts sheet §2.1) aside
    // without parsing stdin; absent when Withings sent none.
    if let Some(attrib) = record.attrib {
        env.push(("WITHINGS_ATTRIB".to_string(), attrib.to_string()));
    }
    for (key, m) in record.keyed() {
        let mut name = format!("WITHINGS_{}", key.to_ascii_uppercase());
        if let Some(unit) = m.unit.as_deref().map(unit_suffix).filter(|u| !u.is_empty()) {
            name = format!("{name}_{unit}");
        }
        env.push((name, m.number().to_string()));
    }
    Ok(env)
}

/// The only variables a hook inherits from the relay. The relay's own
/// environment holds secrets (`WITHINGS_CLIENT_SECRET`, the MQTT password:
/// the OpenWrt init script passes both that way), and a hook that prints its
/// environment would put them in the system log.
const INHERITED: [&str; 4] = ["PATH", "HOME", "LANG", "TZ"];

/// Pure: the allow-listed part of the relay's environment, as `get` reads it.
pub fn inherited_env(get: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    INHERITED
        .iter()
        .filter_map(|name| get(name).map(|value| (name.to_string(), value)))
        .collect()
}

/// Reads a pipe on its own thread. The text arrives on the channel when the
/// pipe closes, which a background process the hook started may delay.
fn read_capped(pipe: Option<impl Read + Send + 'static>) -> Receiver<String> {
    let (done, text) = channel();
    if let Some(pipe) = pipe {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.take(MAX_OUTPUT).read_to_end(&mut buf);
            let _ = done.send(String::from_utf8_lossy(&buf).into_owned());
        });
    }
    text
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl ExecHook {
    fn failure(&self, text: String) -> Error {
        Error::Output {
            sink: format!("--exec {}", self.program),
            source: io::Error::other(text),
        }
    }
}

impl Sink for ExecHook {
    fn name(&self) -> &'static str {
        "exec"
    }

    fn deliver(&mut self, line: &str) -> Result<()> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .envs(inherited_env(|name| std::env::var(name).ok()))
            .envs(hook_env(line)?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                self.failure(format!(
                    "cannot start it: {e} (give a full path to an executable file)"
                ))
            })?;
        // Fed from a thread: a hook that does not read stdin must not block us.
        let stdin = child.stdin.take();
        let input = format!("{line}\n");
        let feeder = std::thread::spawn(move || {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(input.as_bytes());
            }
        });
        let stdout = read_capped(child.stdout.take());
        let stderr = read_capped(child.stderr.take());
        let status = wait_with_timeout(&mut child, self.timeout)
            .map_err(|e| self.failure(format!("cannot wait for it: {e}")))?;
        // Not joined: a stopped hook's children may hold stdin open.
        drop(feeder);
        let grace_ends = Instant::now() + OUTPUT_GRACE;
        for (stream, reader) in [("stdout", stdout), ("stderr", stderr)] {
            let left = grace_ends.saturating_duration_since(Instant::now());
            let text = reader.recv_timeout(left).unwrap_or_default();
            for l in text.lines().filter(|l| !l.trim().is_empty()) {
                log::info!("exec {} {stream}: {l}", self.program);
            }
        }
        match status {
            Some(s) if s.success() => Ok(()),
            Some(s) => Err(self.failure(format!("it exited with {s}"))),
            None => Err(self.failure(format!(
                "it ran longer than {} s and was stopped (see --exec-timeout)",
                self.timeout.as_secs()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"userid":"7","grpid":9,"date":1700000000,"time":"2023-11-14T22:13:20Z","modified":1,"attrib":0,"category":1,"deviceid":null,"model":null,"measures":[{"type":1,"name":"weight","value":72.5,"unit":"kg"},{"type":6,"name":"fat_ratio","value":23.15,"unit":"%"},{"type":71,"name":"body_temperature","value":36.6,"unit":"°C"},{"type":91,"name":"pulse_wave_velocity","value":7.1,"unit":"m/s"},{"type":130,"name":"afib_result","value":0,"unit":null}]}"#;

    #[test]
    fn hooks_get_ids_and_one_variable_per_measure_with_its_unit() {
        let env = hook_env(LINE).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("WITHINGS_USERID"), Some("7"));
        assert_eq!(get("WITHINGS_DATE"), Some("1700000000"));
        assert_eq!(get("WITHINGS_WEIGHT_KG"), Some("72.5"));
        assert_eq!(get("WITHINGS_FAT_RATIO_PERCENT"), Some("23.15"));
        assert_eq!(get("WITHINGS_BODY_TEMPERATURE_C"), Some("36.6"));
        assert_eq!(get("WITHINGS_PULSE_WAVE_VELOCITY_M_S"), Some("7.1"));
        assert_eq!(get("WITHINGS_AFIB_RESULT"), Some("0"));
        assert_eq!(get("WITHINGS_ATTRIB"), Some("0"));
    }

    #[test]
    fn a_body_scan_group_gives_whole_body_and_body_part_variables_once_each() {
        let line = r#"{"userid":"7","grpid":9,"date":1,"time":"t","modified":1,"attrib":1,"category":1,"deviceid":null,"model":"Body Scan","measures":[{"type":8,"name":"fat_mass","value":19.09,"unit":"kg","position":7},{"type":8,"name":"fat_mass","value":19.1,"unit":"kg","position":7},{"type":175,"name":"muscle_mass_segment","value":4.77,"unit":"kg","position":3},{"type":168,"name":"extracellular_water","value":21.39,"unit":"kg","position":6}]}"#;
        let env = hook_env(line).unwrap();
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "WITHINGS_USERID",
                "WITHINGS_GRPID",
                "WITHINGS_DATE",
                "WITHINGS_TIME",
                "WITHINGS_ATTRIB",
                "WITHINGS_FAT_MASS_KG",
                "WITHINGS_MUSCLE_MASS_LEFT_ARM_KG",
                "WITHINGS_EXTRACELLULAR_WATER_KG",
            ]
        );
        assert_eq!(env[4].1, "1");
        assert_eq!(env[5].1, "19.09", "the first of a key wins");
        assert_eq!(env[6].1, "4.77");
    }

    #[test]
    fn hooks_inherit_only_the_allow_list() {
        let relay_env = |name: &str| match name {
            "PATH" => Some("/usr/bin:/bin".to_string()),
            "TZ" => Some("Europe/Paris".to_string()),
            "WITHINGS_CLIENT_SECRET" | "WITHINGS_MQTT_PASSWORD" => Some("hunter2".to_string()),
            _ => None,
        };
        assert_eq!(
            inherited_env(relay_env),
            [
                ("PATH".to_string(), "/usr/bin:/bin".to_string()),
                ("TZ".to_string(), "Europe/Paris".to_string())
            ]
        );
    }

    #[test]
    fn units_become_name_safe() {
        assert_eq!(unit_suffix("ml/min/kg"), "ML_MIN_KG");
        assert_eq!(unit_suffix("mmHg"), "MMHG");
        assert_eq!(unit_suffix("bpm"), "BPM");
    }

    fn hook(script: &str, timeout_ms: u64) -> ExecHook {
        ExecHook {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[test]
    fn a_hook_that_succeeds_delivers_and_sees_stdin_and_env() {
        let dir = crate::store::testdir::TestDir::new("exec");
        let out = dir.path().join("seen");
        let script = format!(
            "cat > '{0}' && echo \"$WITHINGS_WEIGHT_KG\" >> '{0}'",
            out.display()
        );
        hook(&script, 10_000).deliver(LINE).unwrap();
        assert_eq!(
            std::fs::read_to_string(out).unwrap(),
            format!("{LINE}\n72.5\n")
        );
    }

    #[test]
    fn failure_and_timeout_are_not_delivered() {
        let err = hook("exit 3", 10_000)
            .deliver(LINE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exit status: 3"), "{err}");
        let err = hook("sleep 5", 100).deliver(LINE).unwrap_err().to_string();
        assert!(err.contains("--exec-timeout"), "{err}");
        let err = hook("", 100);
        let err = ExecHook {
            program: "/no/such/hook".into(),
            ..err
        }
        .deliver(LINE)
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot start it"), "{err}");
    }
}
