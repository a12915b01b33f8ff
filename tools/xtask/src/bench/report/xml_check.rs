//! A small well-formedness check for the charts' XML, for tests only: no XML parser is a
//! dependency, and the charts use a small subset (a declaration, elements, quoted
//! attributes, escaped text), which this checks strictly.

/// Checks that `document` is well-formed as far as these charts go: one root element,
/// every element closed in order, attributes quoted, no raw `<` or stray `&` in text.
/// Returns the names of the elements in the order they open.
pub fn well_formed(document: &str) -> Result<Vec<String>, String> {
    let body = document
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .ok_or("no XML declaration")?;
    let mut open: Vec<String> = Vec::new();
    let mut opened = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find('<') {
        text_is_escaped(&rest[..start])?;
        let end = rest[start..].find('>').ok_or("a tag is not closed")? + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            match open.pop() {
                Some(expected) if expected == name => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            if open.is_empty() && !rest.trim().is_empty() {
                return Err("content after the root element".into());
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, attributes) = tag.split_once(' ').unwrap_or((tag, ""));
        if open.is_empty() && !opened.is_empty() {
            return Err(format!("a second root element <{name}>"));
        }
        attributes_are_quoted(attributes)?;
        opened.push(name.to_string());
        if !self_closing {
            open.push(name.to_string());
        }
    }
    text_is_escaped(rest)?;
    match open.is_empty() {
        true => Ok(opened),
        false => Err(format!("unclosed elements {open:?}")),
    }
}

fn text_is_escaped(text: &str) -> Result<(), String> {
    for (place, _) in text.match_indices('&') {
        let entity = &text[place..];
        let known = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"];
        if !known.iter().any(|name| entity.starts_with(name)) {
            return Err(format!("a stray & in {text:?}"));
        }
    }
    Ok(())
}

fn attributes_are_quoted(attributes: &str) -> Result<(), String> {
    let mut rest = attributes.trim();
    while !rest.is_empty() {
        let (name, value) = rest.split_once("=\"").ok_or(format!("unquoted: {rest}"))?;
        if name.trim().is_empty() || name.contains(['"', '<', ' ']) {
            return Err(format!("bad attribute name {name:?}"));
        }
        let end = value.find('"').ok_or("an attribute value is not closed")?;
        text_is_escaped(&value[..end])?;
        rest = value[end + 1..].trim_start();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_catches_what_it_should() {
        let declared = |body: &str| format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}");
        assert!(well_formed(&declared("<svg><text a=\"1\">x &amp; y</text></svg>")).is_ok());
        assert!(well_formed(&declared("<svg><text>x</svg></text>")).is_err());
        assert!(well_formed(&declared("<svg><text>x</text>")).is_err());
        assert!(well_formed(&declared("<svg>a & b</svg>")).is_err());
        assert!(well_formed(&declared("<svg a=1></svg>")).is_err());
        assert!(well_formed(&declared("<svg/><svg/>")).is_err());
    }
}
