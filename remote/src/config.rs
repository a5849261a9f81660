//! Which remote a command uses: `--remote` (a configured name, or a location given directly),
//! else the default among the remotes of the workspace's config file (`.binarylm/config.yaml`,
//! machine-local, like `dvc remote add`) and the manifest's `remotes:` (shared with the
//! pipeline). A name in both means the config file's: a local override of a shared remote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pipelines::RemoteConfig;
use serde::{Deserialize, Serialize};

use crate::error::{RemoteError, Result};

/// Name of the config file inside a workspace directory.
const CONFIG_FILE: &str = "config.yaml";

/// Where a remote's definition came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `.binarylm/config.yaml`.
    Config,
    /// The manifest's `remotes:`.
    Manifest,
    /// `--remote` gave a location, not a name.
    Flag,
}

/// A configured remote, as listed by `binarylm remote list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Configured {
    pub name: String,
    pub config: RemoteConfig,
    pub source: Source,
    /// Relative directory paths resolve against this.
    #[serde(skip)]
    pub base: PathBuf,
}

/// Where a remote is, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Dir(PathBuf),
    S3 {
        bucket: String,
        prefix: String,
        endpoint: Option<String>,
        region: Option<String>,
    },
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(p) => write!(f, "{}", p.display()),
            Location::S3 {
                bucket,
                prefix,
                endpoint,
                ..
            } => {
                write!(f, "s3://{bucket}")?;
                if !prefix.is_empty() {
                    write!(f, "/{prefix}")?;
                }
                if let Some(e) = endpoint {
                    write!(f, " at {e}")?;
                }
                Ok(())
            }
        }
    }
}

/// The remote a command will use.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub name: String,
    pub location: Location,
    pub source: Source,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    remotes: BTreeMap<String, Entry>,
}

/// A remote in the config file: a URL alone, or the full mapping.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum Entry {
    Url(String),
    Full(RemoteConfig),
}

impl Entry {
    fn into_config(self) -> RemoteConfig {
        match self {
            Entry::Url(url) => RemoteConfig::from_url(url),
            Entry::Full(c) => c,
        }
    }
}

/// The workspace's remote config file.
pub fn config_path(workspace: &Path) -> PathBuf {
    workspace.join(CONFIG_FILE)
}

fn read_config(workspace: &Path) -> Result<ConfigFile> {
    let path = config_path(workspace);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => return Err(RemoteError::io("read", &path, e)),
    };
    let file: ConfigFile = serde_yaml::from_str(&text).map_err(|e| RemoteError::Config {
        path: path.clone(),
        detail: format!("not a valid remote config: {e}"),
    })?;
    for (name, entry) in &file.remotes {
        let problem = if pipelines::valid_remote_name(name) {
            entry.clone().into_config().problem()
        } else {
            Some("remote names use lowercase letters, digits, `_` and `-`".to_string())
        };
        if let Some(problem) = problem {
            return Err(RemoteError::Config {
                path,
                detail: format!("remote `{name}`: {problem}"),
            });
        }
    }
    Ok(file)
}

fn write_config(workspace: &Path, file: &ConfigFile) -> Result<()> {
    let path = config_path(workspace);
    let text = serde_yaml::to_string(file).map_err(|e| RemoteError::Config {
        path: path.clone(),
        detail: format!("could not encode: {e}"),
    })?;
    std::fs::create_dir_all(workspace).map_err(|e| RemoteError::io("create", workspace, e))?;
    // Written whole to a temp name, then renamed: a crash never leaves half a config.
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(
        &tmp,
        format!("# binarylm remotes of this workspace (`binarylm remote add`)\n{text}"),
    )
    .map_err(|e| RemoteError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| RemoteError::io("replace", &path, e))
}

/// Every configured remote: the config file's, then the manifest's not overridden by it.
/// `manifest` is (its remotes, its directory).
pub fn configured(
    workspace: &Path,
    manifest: Option<(&BTreeMap<String, RemoteConfig>, &Path)>,
) -> Result<Vec<Configured>> {
    let base = workspace
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace.to_path_buf());
    let mut out: Vec<Configured> = read_config(workspace)?
        .remotes
        .into_iter()
        .map(|(name, entry)| Configured {
            name,
            config: entry.into_config(),
            source: Source::Config,
            base: base.clone(),
        })
        .collect();
    if let Some((remotes, dir)) = manifest {
        for (name, config) in remotes {
            if !out.iter().any(|c| &c.name == name) {
                out.push(Configured {
                    name: name.clone(),
                    config: config.clone(),
                    source: Source::Manifest,
                    base: dir.to_path_buf(),
                });
            }
        }
    }
    Ok(out)
}

/// Add (or replace) a remote in the workspace's config file. A relative directory is stored
/// absolute (against the current directory), so it means the same from anywhere.
pub fn add_to_config(workspace: &Path, name: &str, mut config: RemoteConfig) -> Result<()> {
    let path = config_path(workspace);
    if !pipelines::valid_remote_name(name) {
        return Err(RemoteError::Config {
            path,
            detail: format!(
                "`{name}` is not a valid remote name (lowercase letters, digits, `_` and `-`)"
            ),
        });
    }
    if let Some(problem) = config.problem() {
        return Err(RemoteError::Config {
            path,
            detail: format!("remote `{name}`: {problem}"),
        });
    }
    if let Location::Dir(dir) = parse_url(&config, Path::new(".")) {
        let abs = std::path::absolute(&dir).map_err(|e| RemoteError::io("resolve", &dir, e))?;
        config.url = abs.display().to_string();
    }
    let mut file = read_config(workspace)?;
    if config.default {
        for entry in file.remotes.values_mut() {
            let mut c = entry.clone().into_config();
            c.default = false;
            *entry = Entry::Full(c);
        }
    }
    file.remotes.insert(name.to_string(), Entry::Full(config));
    write_config(workspace, &file)
}

/// Remove a remote from the config file; false when it was not there.
pub fn remove_from_config(workspace: &Path, name: &str) -> Result<bool> {
    let mut file = read_config(workspace)?;
    if file.remotes.remove(name).is_none() {
        return Ok(false);
    }
    write_config(workspace, &file)?;
    Ok(true)
}

/// The remote to use: `flag` (a name, or a location given directly), else the default.
pub fn resolve(
    flag: Option<&str>,
    workspace: &Path,
    manifest: Option<(&BTreeMap<String, RemoteConfig>, &Path)>,
) -> Result<Resolved> {
    let all = configured(workspace, manifest)?;
    let chosen = match flag {
        Some(wanted) => match all.iter().find(|c| c.name == wanted) {
            Some(c) => c.clone(),
            None if looks_like_location(wanted) => {
                let config = RemoteConfig::from_url(wanted);
                if let Some(problem) = config.problem() {
                    return Err(RemoteError::UnknownRemote {
                        name: wanted.to_string(),
                        known: problem,
                    });
                }
                Configured {
                    name: wanted.to_string(),
                    config,
                    source: Source::Flag,
                    base: std::env::current_dir().map_err(|e| RemoteError::io("read", ".", e))?,
                }
            }
            None => {
                return Err(RemoteError::UnknownRemote {
                    name: wanted.to_string(),
                    known: known(&all),
                })
            }
        },
        None => match all.as_slice() {
            [] => return Err(RemoteError::NoRemote),
            [only] => only.clone(),
            many => match many.iter().find(|c| c.config.default) {
                Some(c) => c.clone(),
                None => {
                    return Err(RemoteError::NoDefault {
                        names: many
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            },
        },
    };
    Ok(Resolved {
        location: parse_url(&chosen.config, &chosen.base),
        name: chosen.name,
        source: chosen.source,
    })
}

fn known(all: &[Configured]) -> String {
    if all.is_empty() {
        "no remote is configured".to_string()
    } else {
        let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        format!("configured remotes: {}", names.join(", "))
    }
}

/// A path or URL rather than a name: names have no `/`, `.` or `:`.
fn looks_like_location(s: &str) -> bool {
    s.contains('/') || s.contains(':') || s.starts_with('.') || s.starts_with('~')
}

/// The location a (valid) config names; relative directories resolve against `base`.
fn parse_url(config: &RemoteConfig, base: &Path) -> Location {
    let url = config.url.trim();
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        return Location::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            endpoint: config.endpoint.clone(),
            region: config.region.clone(),
        };
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    let path = match path.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(rest))
            .unwrap_or_else(|| PathBuf::from(path)),
        None => PathBuf::from(path),
    };
    Location::Dir(if path.is_absolute() {
        path
    } else {
        base.join(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_remotes() -> BTreeMap<String, RemoteConfig> {
        BTreeMap::from([
            ("team".to_string(), RemoteConfig::from_url("cache")),
            (
                "bucket".to_string(),
                RemoteConfig {
                    url: "s3://b/some/prefix/".into(),
                    endpoint: Some("http://localhost:9000".into()),
                    region: None,
                    default: true,
                },
            ),
        ])
    }

    #[test]
    fn default_flag_names_and_locations() {
        let ws = tempfile::tempdir().expect("tempdir");
        let remotes = manifest_remotes();
        let m = Some((&remotes, Path::new("/proj")));
        let r = resolve(None, ws.path(), m).expect("default");
        assert_eq!(r.name, "bucket");
        assert_eq!(
            r.location,
            Location::S3 {
                bucket: "b".into(),
                prefix: "some/prefix".into(),
                endpoint: Some("http://localhost:9000".into()),
                region: None
            }
        );
        let r = resolve(Some("team"), ws.path(), m).expect("by name");
        assert_eq!(r.location, Location::Dir(PathBuf::from("/proj/cache")));
        let r = resolve(Some("/mnt/x"), ws.path(), m).expect("direct");
        assert_eq!(
            (r.source, r.location),
            (Source::Flag, Location::Dir("/mnt/x".into()))
        );

        let err = resolve(Some("nope"), ws.path(), m).expect_err("unknown");
        assert!(
            err.to_string().contains("configured remotes: bucket, team"),
            "{err}"
        );
        assert!(matches!(
            resolve(None, ws.path(), None),
            Err(RemoteError::NoRemote)
        ));
    }

    #[test]
    fn config_file_overrides_and_picks_default() {
        let ws = tempfile::tempdir().expect("tempdir");
        let remotes = manifest_remotes();
        let m = Some((&remotes, Path::new("/proj")));
        add_to_config(ws.path(), "team", RemoteConfig::from_url("/elsewhere")).expect("add");
        let r = resolve(Some("team"), ws.path(), m).expect("override");
        assert_eq!(
            (r.source, r.location),
            (Source::Config, Location::Dir("/elsewhere".into()))
        );

        let mut other = RemoteConfig::from_url("/other");
        other.default = true;
        add_to_config(ws.path(), "other", other).expect("add default");
        // Two defaults (config and manifest): the config file's comes first.
        assert_eq!(resolve(None, ws.path(), m).expect("default").name, "other");
        assert!(remove_from_config(ws.path(), "other").expect("remove"));
        assert!(!remove_from_config(ws.path(), "other").expect("remove again"));

        std::fs::write(config_path(ws.path()), "remotes: {x: {url: gs://b}}\n").expect("write");
        let err = resolve(None, ws.path(), None).expect_err("bad scheme");
        assert!(err.to_string().contains("gs://"), "{err}");
    }

    #[test]
    fn no_default_among_several() {
        let ws = tempfile::tempdir().expect("tempdir");
        let mut remotes = manifest_remotes();
        remotes.get_mut("bucket").expect("bucket").default = false;
        let err = resolve(None, ws.path(), Some((&remotes, Path::new("/p")))).expect_err("none");
        assert!(err.to_string().contains("bucket, team"), "{err}");
    }
}
