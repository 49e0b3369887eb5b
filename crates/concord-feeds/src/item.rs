//! A feed item as an article.

use concord_core::{Lang, config::FeedSpec};
use concord_pipeline::ArticleSubmission;
use feed_rs::model::Entry;
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

/// The longest external id the API takes (`MAX_EXTERNAL_ID` in concord-server).
const MAX_EXTERNAL_ID: usize = 256;

/// Item `entry` of feed `spec` (whose own language is `feed_lang`) as an article, or
/// why it cannot be one. Items without a publication time are dated `now`; one dated
/// more than a day ahead of `now` is refused, as the API refuses it.
pub fn article_of(
    spec: &FeedSpec,
    feed_lang: Option<&str>,
    entry: &Entry,
    now: Timestamp,
) -> Result<ArticleSubmission, String> {
    let link = entry.links.first().map(|l| l.href.trim().to_owned());
    let id = Some(entry.id.trim())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .or_else(|| link.clone().filter(|l| !l.is_empty()))
        .ok_or("no guid and no link")?;
    let mut external_id = format!("feed:{}:{id}", spec.name);
    if external_id.chars().count() > MAX_EXTERNAL_ID {
        let digest = hex::encode(Sha256::digest(id.as_bytes()));
        external_id = format!("feed:{}:sha256:{digest}", spec.name);
    }
    let title = entry
        .title
        .as_ref()
        .map(|t| plain_text(&t.content))
        .unwrap_or_default();
    if title.is_empty() {
        return Err(format!("{id}: no title"));
    }
    let body = entry
        .content
        .as_ref()
        .and_then(|c| c.body.as_deref())
        .or(entry.summary.as_ref().map(|s| s.content.as_str()))
        .map(plain_text)
        .unwrap_or_default();
    let published_at = entry
        .published
        .or(entry.updated)
        .and_then(|t| Timestamp::from_second(t.timestamp()).ok())
        .unwrap_or(now);
    if published_at
        > now
            .saturating_add(SignedDuration::from_hours(24))
            .unwrap_or(now)
    {
        return Err(format!(
            "{id}: published {published_at}, more than a day ahead"
        ));
    }
    let lang = spec
        .lang
        .as_deref()
        .or(feed_lang)
        .and_then(|l| Lang::parse(l.split(['-', '_']).next().unwrap_or(l)).ok());
    Ok(ArticleSubmission {
        external_id,
        source: Some(spec.source.clone().unwrap_or_else(|| spec.name.clone())),
        url: link.filter(|l| !l.is_empty()),
        lang,
        published_at,
        title,
        body,
    })
}

/// HTML (or plain) text as plain text: tags dropped (a block tag leaves a space),
/// `script`/`style` contents dropped, character references decoded, whitespace runs
/// collapsed.
pub fn plain_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = find_tag(rest) {
        out.push_str(&decode(&rest[..start]));
        let after = &rest[start..];
        let Some(end) = after.find('>') else {
            // A lone '<' is text.
            out.push_str(&decode(after));
            rest = "";
            break;
        };
        let tag = after[1..end].trim_start_matches('/').to_ascii_lowercase();
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        rest = &after[end + 1..];
        if (name == "script" || name == "style") && !after[1..].starts_with('/') {
            let close = format!("</{name}");
            rest = match rest.to_ascii_lowercase().find(&close) {
                Some(i) => rest[i..].find('>').map_or("", |j| &rest[i + j + 1..]),
                None => "",
            };
        }
        out.push(' ');
    }
    out.push_str(&decode(rest));
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where the next tag starts: a `<` followed by a letter, `/`, `!` or `?` (a `<`
/// before a space or a digit is text: "a < b").
fn find_tag(s: &str) -> Option<usize> {
    s.char_indices()
        .zip(s.chars().skip(1))
        .find(|((_, c), next)| {
            *c == '<' && (next.is_ascii_alphabetic() || matches!(next, '/' | '!' | '?'))
        })
        .map(|((i, _), _)| i)
}

/// Decodes the character references of HTML text (named ones of common use, and
/// numeric ones); anything else is left as it is.
fn decode(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let decoded = after.find(';').filter(|&j| j <= 10).and_then(|j| {
            let name = &after[1..j];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => {
                    let code =
                        if let Some(hex) = name.strip_prefix("#x").or(name.strip_prefix("#X")) {
                            u32::from_str_radix(hex, 16).ok()
                        } else {
                            name.strip_prefix('#').and_then(|d| d.parse().ok())
                        };
                    code.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, j))
        });
        match decoded {
            Some((c, j)) => {
                out.push(c);
                rest = &after[j + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn html_becomes_plain_text() {
        assert_eq!(
            plain_text(
                "<p>La Chine&nbsp;lance <b>une</b> initiative</p><script>var x = '<p>';</script>&amp; plus&#8230; &#x41;&unknown;"
            ),
            "La Chine lance une initiative & plus… A&unknown;"
        );
        assert_eq!(plain_text("a < b and c > d"), "a < b and c > d");
        assert_eq!(plain_text("مبادرة <br/>عالمية"), "مبادرة عالمية");
    }

    proptest::proptest! {
        #[test]
        fn any_text_reduces_without_panicking(s in "\\PC{0,200}") {
            let out = plain_text(&s);
            proptest::prop_assert!(!out.starts_with(' ') && !out.ends_with(' '));
        }
    }
}
