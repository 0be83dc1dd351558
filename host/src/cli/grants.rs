//! `--grant` on ad-hoc commands: the credentials a user grants the connector for one command,
//! checked against what the connector declares it asks for (`inlet spec`).
//!
//! `--grant google` grants a declared Google ask, with the scopes it declares, from application
//! default credentials, to `*.googleapis.com`. `--grant NAME=env:VAR@HOST[,HOST]` grants a secret
//! from an environment variable, sent only to the hosts named.

use crate::connectors::ConnectorRef;
use crate::credentials::grant::GOOGLE_DEFAULT_HOSTS;
use crate::credentials::{
    AskKind, CredentialAsk, GoogleAuth, GoogleTokens, Grant, GrantSource, HostPattern, SecretValue,
};
use crate::runtime::Runtime;
use crate::sync;
use anyhow::{Context, bail};
use std::sync::Arc;

/// The grants `--grant` values give `connection`, checked against the connector's spec.
pub(super) async fn from_args(
    runtime: &Runtime,
    reference: &ConnectorRef,
    connection: &str,
    args: &[String],
) -> anyhow::Result<Vec<Grant>> {
    if args.is_empty() {
        return Ok(Vec::new());
    }
    let name = reference.display_name();
    let connector = sync::load(runtime, &name, reference)?;
    let spec = sync::spec(
        &connector,
        crate::runtime::RunLabels::new(connection, &name),
    )
    .await?;
    let asks = CredentialAsk::from_schema(&spec.config_schema)
        .map_err(|e| anyhow::anyhow!("connector `{name}`: {e}"))?;
    args.iter()
        .map(|arg| grant(arg, &asks).with_context(|| format!("--grant {arg} (connector `{name}`)")))
        .collect()
}

fn grant(arg: &str, asks: &[CredentialAsk]) -> anyhow::Result<Grant> {
    let (name, secret) = match arg.split_once('=') {
        Some((name, secret)) => (name, Some(secret)),
        None => (arg, None),
    };
    let declared = || {
        if asks.is_empty() {
            "none".to_owned()
        } else {
            asks.iter()
                .map(|a| format!("`{}`", a.name))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let Some(ask) = asks.iter().find(|a| a.name == name) else {
        bail!(
            "the connector does not declare a credential `{name}` (it declares: {})",
            declared()
        );
    };
    match (ask.kind, secret) {
        (AskKind::Google, None) => Ok(Grant {
            name: name.to_owned(),
            source: GrantSource::Google {
                tokens: Arc::new(GoogleTokens::new(GoogleAuth::discover)),
                who: "application default credentials".to_owned(),
            },
            scopes: ask.scopes.clone(),
            hosts: vec![HostPattern::parse(GOOGLE_DEFAULT_HOSTS).map_err(anyhow::Error::msg)?],
        }),
        (AskKind::Google, Some(_)) => bail!(
            "`{name}` is a Google identity: write `--grant {name}` (application default credentials), or grant a key file in inlet.toml"
        ),
        (AskKind::Secret, None) => bail!(
            "`{name}` is a secret: write `--grant {name}=env:VARIABLE@host` (the variable holding it, and where it may be sent)"
        ),
        (AskKind::Secret, Some(secret)) => secret_grant(name, secret),
    }
}

/// `env:VAR@host[,host]`.
fn secret_grant(name: &str, text: &str) -> anyhow::Result<Grant> {
    let Some((source, hosts)) = text.split_once('@') else {
        bail!("name where the secret may be sent: `{name}=env:VARIABLE@api.example.com`");
    };
    let Some(variable) = source.strip_prefix("env:") else {
        bail!(
            "`{source}`: secrets come from an environment variable here (`env:VARIABLE`); files and Secret Manager are for inlet.toml"
        );
    };
    let value = std::env::var(variable)
        .with_context(|| format!("the environment variable `{variable}` is not usable"))?;
    if value.is_empty() || value.contains(['\r', '\n']) {
        bail!("the environment variable `{variable}` is empty or holds a line break");
    }
    let hosts = hosts
        .split(',')
        .map(HostPattern::parse)
        .collect::<Result<Vec<_>, String>>()
        .map_err(anyhow::Error::msg)?;
    Ok(Grant {
        name: name.to_owned(),
        source: GrantSource::Secret {
            value: SecretValue::new(value),
            origin: format!("env {variable}"),
        },
        scopes: Vec::new(),
        hosts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asks() -> Vec<CredentialAsk> {
        vec![
            CredentialAsk {
                name: "google".into(),
                kind: AskKind::Google,
                scopes: vec!["s".into()],
                purpose: String::new(),
            },
            CredentialAsk {
                name: "token".into(),
                kind: AskKind::Secret,
                scopes: Vec::new(),
                purpose: String::new(),
            },
        ]
    }

    #[test]
    fn grants_follow_the_declared_asks() {
        let google = grant("google", &asks()).unwrap();
        assert_eq!(google.scopes, ["s"]);
        assert!(google.reaches("https", "sheets.googleapis.com", 443));
        let undeclared = grant("github", &asks()).unwrap_err().to_string();
        assert!(
            undeclared.contains("declares: `google`, `token`"),
            "{undeclared}"
        );
        let no_hosts = grant("token=env:PATH", &asks()).unwrap_err().to_string();
        assert!(
            no_hosts.contains("where the secret may be sent"),
            "{no_hosts}"
        );
        // PATH is set in any test environment; its value stands in for a token.
        let token = grant("token=env:PATH@api.example.com", &asks()).unwrap();
        assert!(token.reaches("https", "api.example.com", 443));
        assert!(!token.reaches("https", "other.example.com", 443));
        assert_eq!(token.source_description(), "secret from env PATH");
        let wrong_kind = grant("google=env:X@a.com", &asks())
            .unwrap_err()
            .to_string();
        assert!(wrong_kind.contains("is a Google identity"), "{wrong_kind}");
    }
}
