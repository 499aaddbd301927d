//! `mfa-conform init`: writes a commented target profile for a new implementation, so the
//! first run against it is an edit away.

use crate::exit::{Exit, Stop};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the profile.
    #[arg(long, short = 'o', default_value = "mfa-conform.yaml")]
    pub output: PathBuf,
    /// The target's base URL (scheme and host, e.g. https://tenant.example.com).
    #[arg(long, default_value = "https://tenant.example.com")]
    pub base_url: String,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

/// The profile, commented; `{base_url}` is replaced.
const TEMPLATE: &str = r#"# A target profile for mfa-conform: which implementation to test, with which client, and
# how the harness reaches its test-control hooks. Check it with:
#   mfa-conform run --profile {file} --name 'otp-*'
# `${NAME}` is read from the environment (a missing variable is an error at its line).
# Relative paths (tls.ca_cert, hook commands written as paths) are relative to this file.
# Editor completion: `mfa-conform schema profile > profile.schema.json`, then add the line
#   # yaml-language-server: $schema=profile.schema.json

base_url: {base_url}
# A client allowed the MFA grants (password-realm, mfa-otp, mfa-oob, mfa-recovery-code).
client_id: ${MFA_CLIENT_ID}
client_secret: ${MFA_CLIENT_SECRET}
# The database connection test users live in (the password-realm grant's `realm`).
realm: Username-Password-Authentication
# audience: {base_url}/mfa/          # default: base_url + /mfa/

# What the target supports; scenarios needing anything else are skipped, not failed.
# sms, voice and email need the `messages` hook below; clock needs the `clock` hook.
capabilities: [otp, recovery-code]
# capabilities: [otp, sms, voice, email, recovery-code, clock]

# Test-control hooks. Each is a URL speaking the reference server's contract
# (`mfa-conform serve` documents it), or a command printing the same JSON on stdout.
control:
  # Required: every scenario provisions a fresh user with MFA enabled.
  # Prints {"username": "...", "password": "..."}.
  users: {command: [./hooks/create-user.sh]}
  # For sms/voice/email: the codes sent to a phone number or address.
  # `{to}` is substituted; prints [{"to": "...", "channel": "sms", "code": "123456"}, ...].
  # messages: {command: [./hooks/messages.sh, "{to}"]}
  # For clock: move the target's clock forward by `{seconds}` (expiry scenarios).
  # Prints {"offset_seconds": N}.
  # clock: {command: [./hooks/advance-clock.sh, "{seconds}"]}

# tls: {ca_cert: ca.pem}       # a private CA to trust; `insecure: true` accepts any certificate
timeout: 10s                   # per request
"#;

/// The profile text for `base_url`, naming `file` in its usage line.
pub fn profile(base_url: &str, file: &str) -> String {
    TEMPLATE
        .replace("{base_url}", base_url.trim_end_matches('/'))
        .replace("{file}", file)
}

pub fn main(args: InitArgs) -> Exit {
    match init(&args) {
        Ok(()) => Exit::Ok,
        Err(stop) => stop.report(),
    }
}

fn init(args: &InitArgs) -> Result<(), Stop> {
    let url = url::Url::parse(&args.base_url)
        .map_err(|e| Stop::bad(format!("--base-url {:?}: {e}", args.base_url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Stop::bad(format!(
            "--base-url {:?}: must be http or https",
            args.base_url
        )));
    }
    let text = profile(&args.base_url, &args.output.display().to_string());
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(&args.output).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Stop::bad(format!(
                "{} exists; pass --force to replace it",
                args.output.display()
            ))
        } else {
            Stop::bad(format!("cannot write {}: {e}", args.output.display()))
        }
    })?;
    file.write_all(text.as_bytes())
        .map_err(|e| Stop::bad(format!("cannot write {}: {e}", args.output.display())))?;
    eprintln!(
        "wrote {}: fill in the client and the hooks, then run\n  mfa-conform run --profile {}",
        args.output.display(),
        args.output.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Target;
    use std::path::Path;

    #[test]
    fn the_written_profile_loads() {
        let text = profile("https://idp.example.com/", "vendor.yaml");
        let env = |name: &str| Some(format!("value-of-{name}"));
        let target = Target::parse(Path::new("/srv/vendor.yaml"), &text, env).unwrap();
        assert_eq!(target.base_url(), "https://idp.example.com");
        assert_eq!(target.audience(), "https://idp.example.com/mfa/");
        assert!(target.profile.control.users.is_some());
        assert!(text.contains("mfa-conform run --profile vendor.yaml"));
    }

    #[test]
    fn the_commented_full_capability_list_needs_its_hooks() {
        // Uncommenting every capability without the hooks is refused up front.
        let text = profile("https://idp.example.com", "p.yaml")
            .replace("capabilities: [otp, recovery-code]\n# ", "");
        let env = |name: &str| Some(format!("value-of-{name}"));
        let err = Target::parse(Path::new("p.yaml"), &text, env).unwrap_err();
        assert!(err.message.contains("control.messages"), "{err}");
    }
}
