//! Where a suite comes from. The built-in suite (the scenarios, their requirements
//! catalogue and the reference snapshots) is embedded in the binary, so an installed
//! `mfa-conform` needs no checkout; `scenarios export DIR` writes it out to read or edit.
//! `--scenarios` takes directories (searched recursively) and single files: a user's
//! scenarios check the built-in requirements and any they add in their own catalogue.

use crate::scenario::load::{CATALOGUE_FILE, LoadError, load_scenario, parse_yaml};
use crate::scenario::{Catalogue, Requirement, Suite, SuiteScenario};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The built-in suite: `scenarios/` at build time.
#[derive(rust_embed::Embed)]
#[folder = "scenarios/"]
struct BuiltIn;

/// The reference server's response snapshots: `snapshots/reference/` at build time.
#[derive(rust_embed::Embed)]
#[folder = "snapshots/reference/"]
struct ReferenceSnapshots;

/// How the built-in files are named in reports and errors (and where `export` puts them).
const BUILT_IN_DIR: &str = "scenarios";

/// A catalogue file: `version` present replaces the built-in catalogue; without it, its
/// requirements are added to the built-in ones (an id already built in is replaced).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    version: Option<String>,
    requirements: Vec<Requirement>,
}

/// What a YAML file in a scenario directory is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Catalogue,
    Scenario,
    /// A profile, an expected-failures list or another non-scenario file: not loaded.
    Other,
}

/// Loads the built-in suite (`sources` empty) or the user's files and directories.
/// Every file is checked; every error found is returned, not only the first.
pub fn load(sources: &[PathBuf]) -> Result<Suite, Vec<LoadError>> {
    let files = classified(if sources.is_empty() {
        built_in_files()
    } else {
        user_files(sources)?
    });
    let mut hasher = Sha256::new();
    let mut errors = Vec::new();
    let base = BuiltIn::get(CATALOGUE_FILE).expect("the built-in suite has a catalogue");
    let mut catalogue = parse_catalogue(
        &Path::new(BUILT_IN_DIR).join(CATALOGUE_FILE),
        &String::from_utf8_lossy(&base.data),
    )
    .map_err(|e| vec![e])?;
    let mut own_catalogue = false;
    let mut scenario_files = Vec::new();
    for (path, text, kind) in files {
        match kind {
            Kind::Catalogue => {
                hasher.update(text.as_bytes());
                if sources.is_empty() {
                    continue;
                }
                match merge_catalogue(&mut catalogue, &path, &text, own_catalogue) {
                    Ok(replaced) => own_catalogue |= replaced,
                    Err(e) => errors.push(e),
                }
            }
            Kind::Scenario => scenario_files.push((path, text)),
            Kind::Other => {}
        }
    }
    let mut scenarios: Vec<SuiteScenario> = Vec::new();
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    for (path, text) in scenario_files {
        hasher.update(path.file_name().unwrap_or_default().as_encoded_bytes());
        hasher.update(text.as_bytes());
        match load_scenario(&path, &text, &catalogue) {
            Ok(scenario) => {
                if let Some(other) = names.insert(scenario.name.clone(), path.clone()) {
                    errors.push(whole_file(
                        &path,
                        format!(
                            "scenario name {:?} is also used by {}",
                            scenario.name,
                            other.display()
                        ),
                    ));
                } else {
                    scenarios.push(scenario);
                }
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Suite {
        dir: sources
            .first()
            .cloned()
            .unwrap_or_else(|| PathBuf::from(BUILT_IN_DIR)),
        catalogue,
        scenarios,
        content_hash: format!("sha256:{digest}"),
    })
}

/// The built-in files, catalogue first, then scenarios by name (`scenarios/<name>.yaml`).
fn built_in_files() -> Vec<(PathBuf, String)> {
    let mut names: Vec<String> = BuiltIn::iter().map(|n| n.into_owned()).collect();
    names.sort_by_key(|n| (n != CATALOGUE_FILE, n.clone()));
    names
        .into_iter()
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .filter_map(|n| {
            let file = BuiltIn::get(&n)?;
            let text = String::from_utf8_lossy(&file.data).into_owned();
            Some((Path::new(BUILT_IN_DIR).join(n), text))
        })
        .collect()
}

/// Every `*.yaml`/`*.yml` of the sources: a file as given, a directory recursively (sorted,
/// catalogues first so scenarios can use what they add). A source that cannot be read is an
/// error naming it.
fn user_files(sources: &[PathBuf]) -> Result<Vec<(PathBuf, String)>, Vec<LoadError>> {
    let mut paths = Vec::new();
    let mut errors = Vec::new();
    for source in sources {
        if source.is_file() {
            paths.push(source.clone());
            continue;
        }
        if !source.is_dir() {
            errors.push(whole_file(
                source,
                "no such file or directory (--scenarios takes scenario files and directories)"
                    .into(),
            ));
            continue;
        }
        let mut found: Vec<PathBuf> = Vec::new();
        for entry in walkdir::WalkDir::new(source).follow_links(true) {
            match entry {
                Ok(entry) if entry.file_type().is_file() => {
                    let path = entry.into_path();
                    if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                        found.push(path);
                    }
                }
                Ok(_) => {}
                Err(e) => errors.push(whole_file(source, format!("cannot read directory: {e}"))),
            }
        }
        found.sort();
        paths.extend(found);
    }
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    for path in paths {
        if !seen.insert(path.clone()) {
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push((path, text)),
            Err(e) => errors.push(whole_file(&path, format!("cannot read file: {e}"))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(files)
}

/// Each file with what it is (read once), catalogues first: a scenario may use the
/// requirements a catalogue beside it adds. Otherwise in the given order.
fn classified(files: Vec<(PathBuf, String)>) -> Vec<(PathBuf, String, Kind)> {
    let mut files: Vec<_> = files
        .into_iter()
        .map(|(path, text)| {
            let kind = classify(&path, &text);
            (path, text, kind)
        })
        .collect();
    files.sort_by_key(|(_, _, kind)| *kind != Kind::Catalogue);
    files
}

/// A catalogue by name (`requirements.yaml`) or by content (a top-level `requirements`);
/// a profile (top-level `base_url`) or a list (an expected-failures file) is not a scenario.
/// A file that does not parse is taken for a scenario, so its error is reported.
fn classify(path: &Path, text: &str) -> Kind {
    if path
        .file_name()
        .is_some_and(|n| n == CATALOGUE_FILE || n == "requirements.yml")
    {
        return Kind::Catalogue;
    }
    match parse_yaml::<serde_json::Value>(path, text) {
        Ok(serde_json::Value::Object(map)) if map.contains_key("requirements") => Kind::Catalogue,
        Ok(serde_json::Value::Object(map)) if map.contains_key("base_url") => Kind::Other,
        Ok(serde_json::Value::Array(_)) | Ok(serde_json::Value::Null) => Kind::Other,
        _ => Kind::Scenario,
    }
}

fn parse_catalogue(path: &Path, text: &str) -> Result<Catalogue, LoadError> {
    let file: CatalogueFile = parse_yaml(path, text)?;
    let version = file
        .version
        .ok_or_else(|| whole_file(path, "the catalogue needs a version".into()))?;
    check_unique(path, &file.requirements)?;
    Ok(Catalogue {
        version,
        requirements: file.requirements,
    })
}

/// Adds (or with a `version`, replaces) requirements; gives whether it replaced the whole
/// catalogue. Two catalogues that both replace it are an error.
fn merge_catalogue(
    catalogue: &mut Catalogue,
    path: &Path,
    text: &str,
    replaced_already: bool,
) -> Result<bool, LoadError> {
    let file: CatalogueFile = parse_yaml(path, text)?;
    check_unique(path, &file.requirements)?;
    match file.version {
        Some(version) => {
            if replaced_already {
                return Err(whole_file(
                    path,
                    "a second catalogue with a version: only one may replace the built-in catalogue (leave `version` out to add requirements)".into(),
                ));
            }
            *catalogue = Catalogue {
                version,
                requirements: file.requirements,
            };
            Ok(true)
        }
        None => {
            for requirement in file.requirements {
                match catalogue
                    .requirements
                    .iter_mut()
                    .find(|r| r.id == requirement.id)
                {
                    Some(existing) => *existing = requirement,
                    None => catalogue.requirements.push(requirement),
                }
            }
            Ok(false)
        }
    }
}

fn check_unique(path: &Path, requirements: &[Requirement]) -> Result<(), LoadError> {
    let mut seen = HashSet::new();
    match requirements.iter().find(|r| !seen.insert(r.id.as_str())) {
        Some(twice) => Err(whole_file(
            path,
            format!("requirement id {:?} appears twice", twice.id),
        )),
        None => Ok(()),
    }
}

fn whole_file(path: &Path, message: String) -> LoadError {
    LoadError::whole_file(path, message)
}

/// The reference snapshot `<scenario>/<step>.snap` (a path below `snapshots/reference/`).
pub fn reference_snapshot(relative: &str) -> Option<String> {
    ReferenceSnapshots::get(relative).map(|f| String::from_utf8_lossy(&f.data).into_owned())
}

/// Writes the embedded reference snapshots below `root/reference/`, as `run` reads them;
/// gives how many.
pub fn write_reference_snapshots(root: &Path) -> std::io::Result<usize> {
    let mut written = 0;
    for name in ReferenceSnapshots::iter() {
        let Some(file) = ReferenceSnapshots::get(&name) else {
            continue;
        };
        let path = root.join("reference").join(&*name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &file.data)?;
        written += 1;
    }
    Ok(written)
}

/// Writes the built-in suite to `dir` (`dir/*.yaml`) and the reference snapshots to
/// `dir/snapshots/reference/`; an existing file is replaced only with `force`. Gives the
/// number of files written.
pub fn export(dir: &Path, force: bool) -> std::io::Result<usize> {
    let mut written = 0;
    let suite = BuiltIn::iter().map(|n| (dir.join(&*n), BuiltIn::get(&n)));
    let snapshots = ReferenceSnapshots::iter().map(|n| {
        (
            dir.join("snapshots/reference").join(&*n),
            ReferenceSnapshots::get(&n),
        )
    });
    for (path, file) in suite.chain(snapshots) {
        let Some(file) = file else { continue };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if force {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let mut out = options
            .open(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        std::io::Write::write_all(&mut out, &file.data)?;
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mfa-conform-suite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_built_in_suite_is_the_repository_suite() {
        let built_in = load(&[]).unwrap();
        let from_disk =
            Suite::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")).unwrap();
        assert_eq!(built_in.content_hash, from_disk.content_hash);
        assert_eq!(built_in.scenarios.len(), from_disk.scenarios.len());
        assert!(built_in.scenarios.len() >= 40);
        assert_eq!(
            built_in.scenarios[0].file.parent(),
            Some(Path::new("scenarios"))
        );
    }

    #[test]
    fn a_users_scenario_uses_built_in_and_own_requirements() {
        let dir = temp("own");
        std::fs::create_dir_all(dir.join("nested/deeper")).unwrap();
        std::fs::write(
            dir.join("extra.yaml"),
            "requirements:\n  - {id: ACME-PING, area: errors, text: pings, source: our API guide, level: must}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("nested/deeper/ping.yaml"),
            "description: ping\nsteps:\n  - name: list\n    request: {method: GET, path: /mfa/authenticators}\n    checks:\n      - {req: ACME-PING, status: 401}\n      - {req: ERR-BEARER-MISSING, status: 401}\n",
        )
        .unwrap();
        // A profile and an expected-failures list beside the scenarios are not scenarios.
        std::fs::write(dir.join("staging.yaml"), "base_url: https://x\n").unwrap();
        std::fs::write(dir.join("known.yaml"), "- {requirement: X, reason: y}\n").unwrap();
        let suite = load(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(suite.scenarios.len(), 1);
        assert_eq!(suite.scenarios[0].name, "ping");
        assert!(suite.requirement("ACME-PING").is_some());
        assert!(suite.requirement("VERIFY-OTP").is_some(), "built in");
        let single = load(&[dir.join("nested/deeper/ping.yaml"), dir.join("extra.yaml")]).unwrap();
        assert_eq!(single.scenarios.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mistakes_are_located_and_missing_sources_named() {
        let dir = temp("bad");
        std::fs::write(
            dir.join("typo.yaml"),
            "description: x\nsteps:\n  - name: a\n    request: {method: GET, path: /}\n    checks:\n      - {req: NO-SUCH-ID, status: 200}\n",
        )
        .unwrap();
        let errors = load(&[dir.clone(), dir.join("missing")]).unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter()
                .any(|e| e.contains("missing") && e.contains("no such file")),
            "{text:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn export_writes_a_loadable_suite_and_never_overwrites_unasked() {
        let dir = temp("export");
        let written = export(&dir, false).unwrap();
        assert!(written > 40, "{written}");
        assert!(dir.join(CATALOGUE_FILE).is_file());
        assert!(dir.join("snapshots/reference").is_dir());
        let exported = load(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(exported.scenarios.len(), load(&[]).unwrap().scenarios.len());
        assert!(export(&dir, false).is_err(), "existing files are kept");
        assert_eq!(export(&dir, true).unwrap(), written);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
