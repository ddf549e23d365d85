//! `--url-template`: the URL written to `.status.url` once a session runs.

use crate::servers::bracket_ipv6;

/// What the template's placeholders stand for.
pub struct UrlValues<'a> {
    /// The agent's public host (annotation, node address, or pod IP).
    pub host: &'a str,
    pub id: u32,
    /// The instance's viewer token; empty for servers without tokens (the seed's supervisor).
    pub token: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Host,
    Id,
    Token,
    Name,
    Namespace,
}

/// A parsed template; unknown or unclosed placeholders are refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate(Vec<Part>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlTemplateError {
    #[error(
        "unknown placeholder {{{0}}} (known: {{host}}, {{id}}, {{token}}, {{name}}, {{namespace}})"
    )]
    Unknown(String),
    #[error("a '{{' is not closed")]
    Unclosed,
}

impl UrlTemplate {
    pub fn parse(template: &str) -> Result<Self, UrlTemplateError> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}').ok_or(UrlTemplateError::Unclosed)? + open;
            parts.push(match &rest[open + 1..close] {
                "host" => Part::Host,
                "id" => Part::Id,
                "token" => Part::Token,
                "name" => Part::Name,
                "namespace" => Part::Namespace,
                other => return Err(UrlTemplateError::Unknown(other.to_owned())),
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self(parts))
    }

    pub fn render(&self, values: &UrlValues<'_>) -> String {
        let mut url = String::new();
        for part in &self.0 {
            match part {
                Part::Text(text) => url.push_str(text),
                Part::Host => url.push_str(&bracket_ipv6(values.host)),
                Part::Id => url.push_str(&values.id.to_string()),
                Part::Token => url.push_str(values.token),
                Part::Name => url.push_str(values.name),
                Part::Namespace => url.push_str(values.namespace),
            }
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> UrlValues<'static> {
        UrlValues {
            host: "10.0.0.7",
            id: 2,
            token: "t0k",
            name: "demo",
            namespace: "team-a",
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let t = UrlTemplate::parse("https://{host}/s/{namespace}/{name}?id={id}&token={token}")
            .unwrap();
        assert_eq!(
            t.render(&values()),
            "https://10.0.0.7/s/team-a/demo?id=2&token=t0k"
        );
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let t = UrlTemplate::parse("http://{host}:4690/").unwrap();
        let v = UrlValues {
            host: "fd00::7",
            ..values()
        };
        assert_eq!(t.render(&v), "http://[fd00::7]:4690/");
    }

    #[test]
    fn unknown_and_unclosed_placeholders_are_refused() {
        assert_eq!(
            UrlTemplate::parse("http://{hots}/"),
            Err(UrlTemplateError::Unknown("hots".into()))
        );
        assert_eq!(
            UrlTemplate::parse("http://{host"),
            Err(UrlTemplateError::Unclosed)
        );
        assert_eq!(
            UrlTemplate::parse("plain").unwrap().render(&values()),
            "plain"
        );
    }
}
