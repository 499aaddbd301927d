//! Target profiles: which implementation to test, with which client, and how to reach its
//! test-control hooks. `${VAR}` in a profile is read from the environment.

use crate::scenario::load::{LoadError, parse_yaml};
use crate::scenario::model::Capability;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetProfile {
    /// `https://tenant.example.com`
    pub base_url: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub realm: Option<String>,
    /// Default: `<base_url>/mfa/`.
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    #[serde(default)]
    pub control: Control,
    #[serde(default)]
    pub tls: Tls,
    /// Per-request timeout, e.g. `10s`, `500ms`. Default 10s.
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Control {
    pub users: Option<Hook>,
    pub messages: Option<Hook>,
    pub clock: Option<Hook>,
}

/// A control hook: a URL (the reference server's contract) or a command printing the same
/// JSON on stdout (`{to}` and `{seconds}` substituted in its arguments).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Hook {
    Url(String),
    Command { command: Vec<String> },
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// A PEM CA certificate to trust (for a self-signed or private-CA target).
    pub ca_cert: Option<PathBuf>,
    /// Accept any certificate (never for production targets).
    #[serde(default)]
    pub insecure: bool,
}

/// A profile ready to use: defaults applied, name known.
#[derive(Debug, Clone)]
pub struct Target {
    /// The profile's file stem (`reference` for the embedded server).
    pub name: String,
    pub profile: TargetProfile,
    pub timeout: Duration,
}

impl Target {
    pub fn base_url(&self) -> &str {
        self.profile.base_url.trim_end_matches('/')
    }

    pub fn audience(&self) -> String {
        self.profile
            .audience
            .clone()
            .unwrap_or_else(|| format!("{}/mfa/", self.base_url()))
    }

    pub fn has(&self, capability: Capability) -> bool {
        self.profile.capabilities.contains(&capability)
    }

    /// Reads a profile file, substituting `${VAR}` from the environment.
    pub fn load(path: &Path) -> Result<Target, LoadError> {
        let raw = std::fs::read_to_string(path).map_err(|e| LoadError {
            file: path.to_owned(),
            line: 1,
            column: 1,
            message: format!("cannot read target profile: {e}"),
            snippet: String::new(),
        })?;
        Target::parse(path, &raw, |name| std::env::var(name).ok())
    }

    /// A profile from its text (`path` names it in errors and gives the target's name),
    /// `${VAR}` substituted with `env`.
    pub fn parse(
        path: &Path,
        raw: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Target, LoadError> {
        let raw = crate::scenario::load::normalize_line_breaks(raw);
        let text = substitute_env(path, &raw, env)?;
        let mut profile: TargetProfile = parse_yaml(path, &text)?;
        check_hooks(path, &text, &profile)?;
        if let Some(dir) = path.parent() {
            profile.resolve_paths(dir);
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "target".into());
        Target::new(name, profile).map_err(|message| LoadError {
            file: path.to_owned(),
            line: 1,
            column: 1,
            message,
            snippet: String::new(),
        })
    }

    pub fn new(name: String, profile: TargetProfile) -> Result<Target, String> {
        let url = url::Url::parse(&profile.base_url)
            .map_err(|e| format!("base_url {:?} is not a URL: {e}", profile.base_url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "base_url must be http or https, not {}",
                url.scheme()
            ));
        }
        let timeout = match &profile.timeout {
            None => Duration::from_secs(10),
            Some(text) => parse_duration(text).ok_or_else(|| {
                format!("timeout {text:?} is not a duration (write e.g. 10s, 500ms, 1m)")
            })?,
        };
        Ok(Target {
            name,
            profile,
            timeout,
        })
    }
}

/// The profile of the embedded reference server, on the given base URL.
pub fn reference(base_url: &str) -> Target {
    use crate::server::config;
    let hook = |path: &str| Some(Hook::Url(format!("{base_url}/__control/{path}")));
    Target::new(
        "reference".into(),
        TargetProfile {
            base_url: base_url.to_owned(),
            client_id: Some(config::DEFAULT_CLIENT_ID.into()),
            client_secret: Some(config::DEFAULT_CLIENT_SECRET.into()),
            realm: Some(config::DEFAULT_REALM.into()),
            audience: None,
            capabilities: Capability::ALL.to_vec(),
            control: Control {
                users: hook("users"),
                messages: hook("messages"),
                clock: hook("clock"),
            },
            tls: Tls::default(),
            timeout: None,
        },
    )
    .expect("the reference profile is valid")
}

/// How `run` and `load` name their target (and the suite) on the command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TargetArgs {
    /// Scenario files or directories (searched recursively; repeatable). Default: the
    /// built-in suite. A `requirements.yaml` among them adds requirements to the built-in
    /// catalogue (or, with a `version`, replaces it).
    #[arg(long, value_name = "PATH")]
    pub scenarios: Vec<PathBuf>,
    /// Target profile (YAML). Without it, an embedded reference server is started.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Replaces the profile's base_url (one profile for several environments, e.g. a CI
    /// matrix). The audience follows it unless the profile sets one.
    #[arg(long, requires = "profile", value_name = "URL")]
    pub base_url: Option<String>,
}

/// The target of a `run` or `load`: the profile's, or an embedded reference server started
/// for this command (stopped by [`Resolved::shutdown`]).
pub struct Resolved {
    pub target: Target,
    embedded: Option<crate::server::RunningServer>,
}

impl Resolved {
    /// Loads the profile (with the command line's overrides), or starts an embedded
    /// reference server on a free loopback port.
    pub async fn new(args: &TargetArgs) -> Result<Resolved, crate::exit::Stop> {
        use crate::exit::Stop;
        use crate::server::{self, ServeOptions};
        if let Some(path) = &args.profile {
            let mut target = Target::load(path).map_err(|e| Stop::bad(e.to_string()))?;
            if let Some(base_url) = &args.base_url {
                let mut profile = target.profile.clone();
                profile.base_url = base_url.clone();
                target = Target::new(target.name.clone(), profile)
                    .map_err(|e| Stop::bad(format!("--base-url: {e}")))?;
            }
            return Ok(Resolved {
                target,
                embedded: None,
            });
        }
        let running = server::start(
            "127.0.0.1:0".parse().expect("valid address"),
            ServeOptions {
                control: true,
                ..ServeOptions::default()
            },
        )
        .await
        .map_err(|e| Stop::bad(format!("starting the embedded reference server: {e:#}")))?;
        Ok(Resolved {
            target: reference(&running.base_url),
            embedded: Some(running),
        })
    }

    /// Stops the embedded server, if one was started.
    pub async fn shutdown(self) {
        if let Some(server) = self.embedded {
            server.shutdown().await;
        }
    }
}

impl TargetProfile {
    /// Relative paths in a profile (`tls.ca_cert`, a hook command given as a path such as
    /// `./hooks/sms.sh`) are relative to the profile's directory, not to where the command
    /// runs. A bare command name (`python3`) is looked up on `PATH` as usual.
    pub fn resolve_paths(&mut self, dir: &Path) {
        if let Some(ca) = &mut self.tls.ca_cert
            && ca.is_relative()
        {
            *ca = dir.join(&*ca);
        }
        for hook in [
            &mut self.control.users,
            &mut self.control.messages,
            &mut self.control.clock,
        ]
        .into_iter()
        .flatten()
        {
            if let Hook::Command { command } = hook
                && let Some(program) = command.first_mut()
                && program.contains('/')
                && Path::new(program.as_str()).is_relative()
            {
                *program = dir.join(&*program).to_string_lossy().into_owned();
            }
        }
    }
}

/// The control hook each capability needs: codes sent by SMS, voice or email are read back
/// through `messages`, clock scenarios move the clock through `clock`.
fn needed_hook(capability: Capability) -> Option<&'static str> {
    match capability {
        Capability::Sms | Capability::Voice | Capability::Email => Some("messages"),
        Capability::Clock => Some("clock"),
        _ => None,
    }
}

/// A capability claimed without the hook it needs is an error at the capability's line.
fn check_hooks(path: &Path, text: &str, profile: &TargetProfile) -> Result<(), LoadError> {
    for capability in &profile.capabilities {
        let Some(hook) = needed_hook(*capability) else {
            continue;
        };
        let present = match hook {
            "messages" => profile.control.messages.is_some(),
            _ => profile.control.clock.is_some(),
        };
        if !present {
            let (line, column) = capability_position(text, capability.as_str());
            return Err(LoadError {
                file: path.to_owned(),
                line,
                column,
                message: format!(
                    "capability {} needs the control.{hook} hook (a URL or {{command: [...]}}), which this profile does not have",
                    capability.as_str()
                ),
                snippet: String::new(),
            });
        }
    }
    Ok(())
}

/// Where `name` is listed under the top-level `capabilities:` key (1-based), or that key.
fn capability_position(text: &str, name: &str) -> (u64, u64) {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|l| l.starts_with("capabilities")) else {
        return (1, 1);
    };
    let word = regex::Regex::new(&format!(r"(^|[\s\[,-]){}($|[\s\],])", regex::escape(name)))
        .expect("valid regex");
    for (index, line) in lines.iter().enumerate().skip(start) {
        if index > start && !line.starts_with([' ', '\t', '-']) && !line.trim().is_empty() {
            break;
        }
        let scanned = if index == start {
            line.split_once(':').map_or("", |(_, rest)| rest)
        } else {
            line
        };
        if let Some(m) = word.find(scanned) {
            let offset = line.len() - scanned.len();
            let at = m.as_str().find(name).unwrap_or(0);
            return (index as u64 + 1, (offset + m.start() + at) as u64 + 1);
        }
    }
    (start as u64 + 1, 1)
}

pub use crate::units::parse_duration;

/// Replaces `${NAME}` with the variable's value; an unset variable is an error at its line.
fn substitute_env(
    path: &Path,
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, LoadError> {
    let pattern = regex::Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}").expect("valid regex");
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let mut last = 0;
        for caps in pattern.captures_iter(line) {
            let whole = caps.get(0).expect("match");
            let name = &caps[1];
            let value = lookup(name).ok_or_else(|| LoadError {
                file: path.to_owned(),
                line: index as u64 + 1,
                column: whole.start() as u64 + 1,
                message: format!("environment variable {name} is not set"),
                snippet: String::new(),
            })?;
            out.push_str(&line[last..whole.start()]);
            // Quote-safe: the value lands inside a YAML scalar, so keep it on one line.
            out.push_str(&value.replace('\n', " "));
            last = whole.end();
        }
        out.push_str(&line[last..]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_substitution_and_errors() {
        let lookup = |n: &str| (n == "SECRET").then(|| "s3cr3t".to_owned());
        let p = Path::new("t.yaml");
        assert_eq!(
            substitute_env(p, "a: ${SECRET}\nb: x\n", lookup).unwrap(),
            "a: s3cr3t\nb: x\n"
        );
        let err = substitute_env(p, "a: 1\nb: ${MISSING}\n", lookup).unwrap_err();
        assert_eq!((err.line, err.column), (2, 4));
        assert!(err.message.contains("MISSING"));
    }

    #[test]
    fn a_capability_without_its_hook_is_located() {
        let text =
            "base_url: http://x\ncapabilities:\n  - otp\n  - sms\ncontrol:\n  users: http://x/u\n";
        let err = Target::parse(Path::new("p.yaml"), text, |_| None).unwrap_err();
        assert_eq!((err.line, err.column), (4, 5), "{err}");
        assert!(err.message.contains("control.messages"), "{}", err.message);
        let flow = "base_url: http://x\ncapabilities: [otp, clock]\n";
        let err = Target::parse(Path::new("p.yaml"), flow, |_| None).unwrap_err();
        assert_eq!((err.line, err.column), (2, 21), "{err}");
        assert!(err.message.contains("control.clock"), "{}", err.message);
        let fine =
            "base_url: http://x\ncapabilities: [otp, sms]\ncontrol: {messages: http://x/m}\n";
        assert!(Target::parse(Path::new("p.yaml"), fine, |_| None).is_ok());
    }

    #[test]
    fn relative_paths_are_relative_to_the_profile() {
        let text = "base_url: https://x\ncontrol:\n  users: {command: [./hooks/users.sh, a]}\n  messages: {command: [python3, m.py]}\ntls: {ca_cert: ca.pem}\n";
        let target = Target::parse(Path::new("/etc/vendor/p.yaml"), text, |_| None).unwrap();
        assert_eq!(
            target.profile.tls.ca_cert.as_deref(),
            Some(Path::new("/etc/vendor/ca.pem"))
        );
        let Some(Hook::Command { command }) = &target.profile.control.users else {
            panic!("a command hook");
        };
        assert_eq!(command[0], "/etc/vendor/./hooks/users.sh");
        let Some(Hook::Command { command }) = &target.profile.control.messages else {
            panic!("a command hook");
        };
        assert_eq!(command[0], "python3", "a bare name stays a PATH lookup");
    }

    #[test]
    fn unknown_keys_are_rejected_with_location() {
        let err =
            parse_yaml::<TargetProfile>(Path::new("t.yaml"), "base_url: http://x\nclient: a\n")
                .unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("client"), "{}", err.message);
    }
}
