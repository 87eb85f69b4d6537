//! Where the bucket is and how to reach it, resolved the way the AWS tools resolve it: the
//! `s3://BUCKET/PREFIX` URL, then explicit settings, then the standard `AWS_*` variables,
//! then the shared config and credentials files of a profile (`~/.aws/config`,
//! `~/.aws/credentials`), and last the object store's own chain (web identity, container
//! credentials, instance metadata). Resolution is pure over an [`AwsEnv`], so every rule has
//! a test that does not touch the process environment.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// `s3://BUCKET/PREFIX`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUrl {
    /// The bucket's name.
    pub bucket: String,
    /// The key prefix under which the archive lives, without leading or trailing `/`;
    /// empty for the bucket's root.
    pub prefix: String,
}

impl BucketUrl {
    /// Parses `s3://BUCKET[/PREFIX]`.
    ///
    /// # Errors
    /// [`Error::Url`] naming what is wrong.
    pub fn parse(text: &str) -> Result<BucketUrl> {
        let bad = |why: &str| Error::Url {
            url: text.to_owned(),
            why: why.to_owned(),
        };
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| bad("an object-storage archive is written s3://BUCKET/PREFIX"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's bucket naming rules, as far as a typo can be caught before a request is sent.
        if bucket.len() < 3
            || bucket.len() > 63
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(bad(
                "a bucket name has 3 to 63 characters: lowercase letters, digits, '-' and '.'",
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..")
            || prefix.contains("//")
            || prefix.chars().any(char::is_control)
        {
            return Err(bad("the prefix has an empty, '.' or '..' part"));
        }
        Ok(BucketUrl {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

impl fmt::Display for BucketUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// How requests name the bucket (the AWS CLI's `addressing_style`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressingStyle {
    /// Virtual-hosted on AWS, path-style on a custom endpoint (S3-compatible servers rarely
    /// have the wildcard DNS virtual hosting needs).
    #[default]
    Auto,
    /// `https://ENDPOINT/BUCKET/KEY`.
    Path,
    /// `https://BUCKET.ENDPOINT/KEY`.
    Virtual,
}

impl std::str::FromStr for AddressingStyle {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(AddressingStyle::Auto),
            "path" => Ok(AddressingStyle::Path),
            "virtual" => Ok(AddressingStyle::Virtual),
            _ => Err(format!(
                "unknown addressing style \"{s}\" (auto, path or virtual)"
            )),
        }
    }
}

/// What a command or a daemon's server table says about the bucket; anything left `None`
/// comes from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSettings {
    /// The archive's URL.
    pub url: BucketUrl,
    /// A custom endpoint (`http://127.0.0.1:9000`); `http://` is allowed when given.
    pub endpoint: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// The profile of the shared config files.
    pub profile: Option<String>,
    /// Path-style or virtual-hosted requests.
    pub addressing_style: AddressingStyle,
    /// Accept a store that does not enforce create-only writes (see `docs/object-storage.md`:
    /// only one archiver may then ever write under the prefix).
    pub single_writer: bool,
}

impl BucketSettings {
    /// Settings for `url` with everything else from the environment.
    pub fn new(url: BucketUrl) -> Self {
        BucketSettings {
            url,
            endpoint: None,
            region: None,
            profile: None,
            addressing_style: AddressingStyle::Auto,
            single_writer: false,
        }
    }
}

/// The process environment as resolution sees it; tests give their own.
pub trait AwsEnv {
    /// An environment variable, `None` when unset or empty.
    fn var(&self, name: &str) -> Option<String>;
    /// The contents of a file, `None` when it does not exist.
    ///
    /// # Errors
    /// Any other failure to read it.
    fn read_file(&self, path: &std::path::Path) -> std::io::Result<Option<String>>;
    /// The home directory.
    fn home_dir(&self) -> Option<PathBuf>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl AwsEnv for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn read_file(&self, path: &std::path::Path) -> std::io::Result<Option<String>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn home_dir(&self) -> Option<PathBuf> {
        std::env::var_os("HOME").map(PathBuf::from)
    }
}

/// Static credentials; when none are found the store's own chain (web identity, container,
/// instance metadata) is asked at request time.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// `aws_access_key_id`.
    pub access_key_id: String,
    /// `aws_secret_access_key`.
    pub secret_access_key: String,
    /// `aws_session_token`, for temporary credentials.
    pub session_token: Option<String>,
    /// Where they came from, for messages (`environment`, `profile "x" in FILE`).
    pub source: String,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"********")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Everything needed to build the client, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The archive's URL.
    pub url: BucketUrl,
    /// The endpoint, if not AWS's own.
    pub endpoint: Option<String>,
    /// The region (`us-east-1` when nothing says otherwise, as the AWS tools default for S3).
    pub region: String,
    /// Virtual-hosted requests (else path-style).
    pub virtual_hosted: bool,
    /// Plain HTTP allowed: only when the endpoint given says `http://`.
    pub allow_http: bool,
    /// Static credentials, if any were found.
    pub credentials: Option<StaticCredentials>,
    /// Variables passed on to the object store's own credential chain.
    pub chain: Vec<(String, String)>,
    /// See [`BucketSettings::single_writer`].
    pub single_writer: bool,
}

/// The variables of the AWS credential chain beyond static keys that the object store reads
/// itself (web identity, container credentials, STS endpoint, instance metadata endpoint).
const CHAIN_VARS: [&str; 8] = [
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_ENDPOINT_URL_STS",
    "AWS_METADATA_ENDPOINT",
];

impl BucketSettings {
    /// Resolves the settings against `env`.
    ///
    /// # Errors
    /// [`Error::Settings`] for an unreadable or malformed shared file, a named profile that
    /// does not exist, half a key pair, or an endpoint that is not a URL.
    pub fn resolve(&self, env: &dyn AwsEnv) -> Result<Resolved> {
        let profile_name = self
            .profile
            .clone()
            .or_else(|| env.var("AWS_PROFILE"))
            .unwrap_or_else(|| "default".to_owned());
        let explicit_profile = self.profile.is_some() || env.var("AWS_PROFILE").is_some();
        let home = env.home_dir();
        let file = |var: &str, default: &str| {
            env.var(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
        };
        let config_path = file("AWS_CONFIG_FILE", "config");
        let credentials_path = file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let config = read_ini(env, config_path.as_deref())?;
        let credentials = read_ini(env, credentials_path.as_deref())?;
        // In the config file a profile's section is `[profile NAME]`, except `[default]`.
        let config_section = if profile_name == "default" {
            "default".to_owned()
        } else {
            format!("profile {profile_name}")
        };
        let from_config = config.get(&config_section);
        let from_credentials = credentials.get(&profile_name);
        if explicit_profile && from_config.is_none() && from_credentials.is_none() {
            return Err(Error::Settings(format!(
                "AWS profile \"{profile_name}\" is not in {} nor in {}",
                show(config_path.as_deref()),
                show(credentials_path.as_deref())
            )));
        }
        let profile_key = |key: &str| {
            from_credentials
                .and_then(|s| s.get(key))
                .or_else(|| from_config.and_then(|s| s.get(key)))
                .cloned()
        };

        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| env.var("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env.var("AWS_ENDPOINT_URL"))
            .or_else(|| profile_key("endpoint_url"));
        let allow_http = match &endpoint {
            Some(e) if e.starts_with("http://") => true,
            Some(e) if e.starts_with("https://") => false,
            Some(e) => {
                return Err(Error::Settings(format!(
                    "endpoint \"{e}\" is not an http:// or https:// URL"
                )));
            }
            None => false,
        };
        let region = self
            .region
            .clone()
            .or_else(|| env.var("AWS_REGION"))
            .or_else(|| env.var("AWS_DEFAULT_REGION"))
            .or_else(|| profile_key("region"))
            .unwrap_or_else(|| "us-east-1".to_owned());
        let style = match self.addressing_style {
            AddressingStyle::Auto => from_config
                .and_then(|s| s.get("s3.addressing_style"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(AddressingStyle::Auto),
            style => style,
        };
        let virtual_hosted = match style {
            AddressingStyle::Auto => endpoint.is_none(),
            AddressingStyle::Path => false,
            AddressingStyle::Virtual => true,
        };

        let credentials = match (
            env.var("AWS_ACCESS_KEY_ID"),
            env.var("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(id), Some(secret)) => Some(StaticCredentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: env.var("AWS_SESSION_TOKEN"),
                source: "the environment".to_owned(),
            }),
            (Some(_), None) | (None, Some(_)) => {
                return Err(Error::Settings(
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together".to_owned(),
                ));
            }
            (None, None) => match (
                profile_key("aws_access_key_id"),
                profile_key("aws_secret_access_key"),
            ) {
                (Some(id), Some(secret)) => Some(StaticCredentials {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: profile_key("aws_session_token"),
                    source: format!("profile \"{profile_name}\""),
                }),
                (Some(_), None) | (None, Some(_)) => {
                    return Err(Error::Settings(format!(
                        "profile \"{profile_name}\" has only one of aws_access_key_id and aws_secret_access_key"
                    )));
                }
                (None, None) => None,
            },
        };
        let chain = CHAIN_VARS
            .iter()
            .filter_map(|name| env.var(name).map(|v| ((*name).to_owned(), v)))
            .collect();
        Ok(Resolved {
            url: self.url.clone(),
            endpoint,
            region,
            virtual_hosted,
            allow_http,
            credentials,
            chain,
            single_writer: self.single_writer,
        })
    }
}

fn show(path: Option<&std::path::Path>) -> String {
    path.map_or_else(
        || "(no home directory)".to_owned(),
        |p| p.display().to_string(),
    )
}

/// Sections of an AWS shared file: `[name]` then `key = value`; an indented `key = value`
/// under a `key =` with no value is a sub-setting, stored as `key.sub` (the `s3 =` block of
/// the config file).
type Ini = HashMap<String, HashMap<String, String>>;

fn read_ini(env: &dyn AwsEnv, path: Option<&std::path::Path>) -> Result<Ini> {
    let Some(path) = path else {
        return Ok(Ini::new());
    };
    let text = env
        .read_file(path)
        .map_err(|e| Error::Settings(format!("could not read \"{}\": {e}", path.display())))?;
    let Some(text) = text else {
        return Ok(Ini::new());
    };
    parse_ini(&text).map_err(|(line, why)| {
        Error::Settings(format!("\"{}\" line {line}: {why}", path.display()))
    })
}

fn parse_ini(text: &str) -> std::result::Result<Ini, (usize, &'static str)> {
    let mut ini = Ini::new();
    let mut section: Option<String> = None;
    let mut parent: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let indented = raw.starts_with([' ', '\t']);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or((line_no, "a section header lacks its closing ']'"))?;
            section = Some(name.trim().to_owned());
            parent = None;
            ini.entry(name.trim().to_owned()).or_default();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err((line_no, "expected `key = value`"));
        };
        let Some(current) = &section else {
            return Err((line_no, "a setting before any [section]"));
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim().to_owned());
        let entries = ini.entry(current.clone()).or_default();
        match (&parent, indented) {
            (Some(p), true) => {
                entries.insert(format!("{p}.{key}"), value);
            }
            _ if value.is_empty() => parent = Some(key),
            _ => {
                parent = None;
                entries.insert(key, value);
            }
        }
    }
    Ok(ini)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[derive(Default)]
    struct FakeEnv {
        vars: HashMap<&'static str, &'static str>,
        files: HashMap<PathBuf, &'static str>,
    }

    impl AwsEnv for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).map(|v| (*v).to_owned())
        }
        fn read_file(&self, path: &Path) -> std::io::Result<Option<String>> {
            Ok(self.files.get(path).map(|v| (*v).to_owned()))
        }
        fn home_dir(&self) -> Option<PathBuf> {
            Some(PathBuf::from("/home/u"))
        }
    }

    fn settings(url: &str) -> BucketSettings {
        BucketSettings::new(BucketUrl::parse(url).unwrap())
    }

    #[test]
    fn urls_parse_and_print_back() {
        let url = BucketUrl::parse("s3://wal-archive/fleet/db1/").unwrap();
        assert_eq!(url.bucket, "wal-archive");
        assert_eq!(url.prefix, "fleet/db1");
        assert_eq!(url.to_string(), "s3://wal-archive/fleet/db1");
        assert_eq!(BucketUrl::parse("s3://bkt").unwrap().prefix, "");
        for bad in [
            "wal-archive/x",
            "s3://",
            "s3://ab",
            "s3://Upper/x",
            "s3://b_b_b/x",
            "s3://bkt/a/../b",
            "s3://bkt/a//b",
        ] {
            assert!(
                matches!(BucketUrl::parse(bad), Err(Error::Url { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_standard_variables_work_as_for_the_aws_tools() {
        let env = FakeEnv {
            vars: HashMap::from([
                ("AWS_ACCESS_KEY_ID", "AK"),
                ("AWS_SECRET_ACCESS_KEY", "SK"),
                ("AWS_REGION", "eu-west-3"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ]),
            ..FakeEnv::default()
        };
        let r = settings("s3://bkt/p").resolve(&env).unwrap();
        assert_eq!(r.region, "eu-west-3");
        assert_eq!(r.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(r.allow_http, "an explicit http:// endpoint is allowed");
        assert!(!r.virtual_hosted, "a custom endpoint is path-style");
        let c = r.credentials.unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.source.as_str()),
            ("AK", "the environment")
        );
        assert!(
            !format!("{c:?}").contains("SK"),
            "the secret is never printed"
        );
    }

    #[test]
    fn aws_itself_is_virtual_hosted_https_in_us_east_1_by_default() {
        let r = settings("s3://bkt").resolve(&FakeEnv::default()).unwrap();
        assert!(r.virtual_hosted && !r.allow_http);
        assert_eq!(r.region, "us-east-1");
        assert_eq!(r.credentials, None, "left to the instance-metadata chain");
    }

    #[test]
    fn the_s3_specific_endpoint_variable_wins_and_settings_win_over_both() {
        let env = FakeEnv {
            vars: HashMap::from([
                ("AWS_ENDPOINT_URL", "https://general"),
                ("AWS_ENDPOINT_URL_S3", "https://s3-only"),
            ]),
            ..FakeEnv::default()
        };
        let r = settings("s3://bkt").resolve(&env).unwrap();
        assert_eq!(r.endpoint.as_deref(), Some("https://s3-only"));
        let mut s = settings("s3://bkt");
        s.endpoint = Some("https://given".into());
        s.addressing_style = AddressingStyle::Virtual;
        let r = s.resolve(&env).unwrap();
        assert_eq!(r.endpoint.as_deref(), Some("https://given"));
        assert!(r.virtual_hosted);
    }

    #[test]
    fn a_profile_comes_from_the_shared_files() {
        let env = FakeEnv {
            vars: HashMap::from([("AWS_PROFILE", "backup")]),
            files: HashMap::from([
                (
                    PathBuf::from("/home/u/.aws/config"),
                    "[default]\nregion = us-west-2\n\n[profile backup]\nregion = eu-central-1\nendpoint_url = https://minio.example:9000\ns3 =\n  addressing_style = virtual\n",
                ),
                (
                    PathBuf::from("/home/u/.aws/credentials"),
                    "# keys\n[backup]\naws_access_key_id = PK\naws_secret_access_key = PS\n",
                ),
            ]),
        };
        let r = settings("s3://bkt").resolve(&env).unwrap();
        assert_eq!(r.region, "eu-central-1");
        assert_eq!(r.endpoint.as_deref(), Some("https://minio.example:9000"));
        assert!(r.virtual_hosted, "the profile's s3 addressing_style");
        let c = r.credentials.unwrap();
        assert_eq!(c.access_key_id, "PK");
        assert_eq!(c.source, "profile \"backup\"");
    }

    #[test]
    fn a_named_profile_that_does_not_exist_is_refused() {
        let mut s = settings("s3://bkt");
        s.profile = Some("nope".into());
        let err = s.resolve(&FakeEnv::default()).unwrap_err().to_string();
        assert!(err.contains("profile \"nope\""), "{err}");
    }

    #[test]
    fn half_a_key_pair_and_a_bad_endpoint_are_refused() {
        let env = FakeEnv {
            vars: HashMap::from([("AWS_ACCESS_KEY_ID", "AK")]),
            ..FakeEnv::default()
        };
        assert!(settings("s3://bkt").resolve(&env).is_err());
        let mut s = settings("s3://bkt");
        s.endpoint = Some("127.0.0.1:9000".into());
        assert!(s.resolve(&FakeEnv::default()).is_err());
    }

    #[test]
    fn a_malformed_shared_file_is_named_with_its_line() {
        let env = FakeEnv {
            files: HashMap::from([(PathBuf::from("/home/u/.aws/config"), "[default\n")]),
            ..FakeEnv::default()
        };
        let err = settings("s3://bkt").resolve(&env).unwrap_err().to_string();
        assert!(err.contains("/home/u/.aws/config\" line 1"), "{err}");
    }
}
