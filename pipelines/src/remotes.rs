//! `remotes:` at the top level of a manifest: where `binarylm push`/`pull` (and `run --pull`)
//! share artifacts. Remotes name places, not content: they never enter a fingerprint, so adding
//! or moving one leaves every stage cached.

use std::collections::BTreeMap;

use crate::de::Issue;
use crate::diagnostics::{ErrorCode, Reporter};
use crate::yaml::Node;

/// The schema text of `remotes:` (also the hint when it is malformed).
pub(crate) const REMOTES_DOC: &str = "Remote caches for `binarylm push`/`pull`, by name: each a directory path (relative to the manifest) or `s3://bucket/prefix`, written as a string or as a mapping with `url` and optional `endpoint`, `region`, `default`. Optional.";

const URL_HINT: &str = "a remote is a directory path or `s3://bucket/prefix` (`endpoint` and `region` are for S3 only), e.g. `remotes: { team: /mnt/shared/cache }`";

/// One remote cache, as written in a manifest or a workspace's config file.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// A directory on a shared file system (absolute, or relative to the manifest's directory)
    /// or an S3-compatible bucket, `s3://bucket/prefix`. Required.
    pub url: String,
    /// S3 only: the endpoint of an S3-compatible server (MinIO, Ceph, moto), e.g.
    /// `http://localhost:9000`. Default: AWS itself (or `AWS_ENDPOINT_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// S3 only: the bucket's region. Default: `AWS_REGION`/`AWS_DEFAULT_REGION`, else us-east-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Use this remote when `--remote` is not given. Default `false`; a single remote is the
    /// default without it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
}

impl RemoteConfig {
    /// A remote given only by its URL.
    pub fn from_url(url: impl Into<String>) -> RemoteConfig {
        RemoteConfig {
            url: url.into(),
            endpoint: None,
            region: None,
            default: false,
        }
    }

    /// What is wrong with this remote's values, if anything (shared by the manifest loader and
    /// the workspace config file).
    pub fn problem(&self) -> Option<String> {
        let url = self.url.trim();
        if url.is_empty() {
            return Some("`url` is empty".to_string());
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            if rest.split('/').next().unwrap_or("").is_empty() {
                return Some(format!(
                    "`{url}` names no bucket (expected `s3://bucket/prefix`)"
                ));
            }
        } else if let Some((scheme, _)) = url.split_once("://") {
            if scheme != "file" {
                return Some(format!(
                    "`{url}`: remotes are a directory path or `s3://bucket/prefix`; `{scheme}://` is not supported"
                ));
            }
            if self.endpoint.is_some() || self.region.is_some() {
                return Some("`endpoint` and `region` only apply to `s3://` remotes".to_string());
            }
        } else if self.endpoint.is_some() || self.region.is_some() {
            return Some("`endpoint` and `region` only apply to `s3://` remotes".to_string());
        }
        None
    }
}

/// Whether `name` is a valid remote name (the stage-name rule).
pub fn valid_remote_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Checks `remotes:` and returns the remotes it names (every problem reported, with its span).
/// `report` renders a remote's deserialization issues under the key path it is given
/// (`remotes.<name>`), as the loader does for every other key.
pub(crate) fn check_remotes(
    node: &Node,
    r: &mut Reporter<'_>,
    report: fn(Vec<Issue>, &str, &mut Reporter<'_>),
) -> BTreeMap<String, RemoteConfig> {
    let mut out = BTreeMap::new();
    let Some(entries) = node.as_map() else {
        if !node.is_null() {
            r.at(
                ErrorCode::WrongType,
                node.span,
                node.width,
                format!(
                    "`remotes` must be a mapping of names to remotes, but it is {}",
                    node.describe()
                ),
                Some(format!(
                    "e.g. `remotes: {{ shared: /mnt/team/cache }}` — {REMOTES_DOC}"
                )),
            );
        }
        return out;
    };
    let mut defaults = Vec::new();
    for (key, value) in entries {
        let name = key.text().unwrap_or("");
        if !valid_remote_name(name) {
            r.at(
                ErrorCode::InvalidValue,
                key.span,
                key.width,
                format!("invalid remote name `{name}`"),
                Some("remote names use lowercase letters, digits, `_` and `-`".to_string()),
            );
            continue;
        }
        let config = match value.text() {
            Some(url) => Ok(RemoteConfig::from_url(url)),
            None => crate::de::from_node::<RemoteConfig>(value),
        };
        let config = match config {
            Ok(c) => c,
            Err(issues) => {
                report(issues, &format!("remotes.{name}"), r);
                continue;
            }
        };
        if let Some(problem) = config.problem() {
            r.at(
                ErrorCode::InvalidValue,
                value.span,
                value.width,
                format!("remote `{name}`: {problem}"),
                Some(URL_HINT.to_string()),
            );
            continue;
        }
        if config.default {
            defaults.push(key);
        }
        out.insert(name.to_string(), config);
    }
    if let [first, second, ..] = defaults.as_slice() {
        r.at(
            ErrorCode::InvalidValue,
            second.span,
            second.width,
            format!(
                "remotes `{}` and `{}` both say `default: true`",
                first.text().unwrap_or(""),
                second.text().unwrap_or("")
            ),
            Some("mark one remote as the default".to_string()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGES: &str = "stages:\n  prep: { kind: command, run: make }\n";

    #[test]
    fn string_and_mapping_forms_and_no_effect_on_stages() {
        let with = format!(
            "name: p\nremotes:\n  team: ../cache\n  bucket:\n    url: s3://b/x\n    endpoint: http://localhost:9000\n    default: true\n{STAGES}"
        );
        let m =
            crate::parse(&with, std::path::Path::new("p.yaml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.remotes["team"], RemoteConfig::from_url("../cache"));
        let bucket = &m.remotes["bucket"];
        assert_eq!(bucket.endpoint.as_deref(), Some("http://localhost:9000"));
        assert!(bucket.default);
        let without = crate::parse(
            &format!("name: p\n{STAGES}"),
            std::path::Path::new("p.yaml"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(without.remotes.is_empty());
        // Remotes name places, not content: the stages (what fingerprints hash) are the same.
        assert_eq!(m.stages[0].params, without.stages[0].params);
        assert_eq!(m.seed, without.seed);
    }

    #[test]
    fn problems() {
        let problem = |url: &str| RemoteConfig::from_url(url).problem();
        assert_eq!(problem("/mnt/x"), None);
        assert_eq!(problem("file:///mnt/x"), None);
        assert_eq!(problem("s3://bucket"), None);
        assert!(problem("s3:///prefix").is_some());
        assert!(problem("https://host/x").is_some());
        assert!(problem("  ").is_some());
        assert!(
            valid_remote_name("team-2") && !valid_remote_name("Team") && !valid_remote_name("-x")
        );
    }
}
