//! Just enough HTML to drive a login or consent form the way a browser without JavaScript would: find
//! the form, keep its hidden fields (the CSRF token), fill in the username and password, and press the
//! approving button. It does not depend on field names beyond the usual ones.

/// A form as a browser would submit it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Form {
    /// The `action` attribute, as written (may be empty: submit to the page's own URL).
    pub action: String,
    /// `get` or `post`, lower-case.
    pub method: String,
    /// Named controls in document order: (name, value, type).
    pub inputs: Vec<Input>,
}

/// One form control.
#[derive(Debug, Default, PartialEq, Eq, Clone)]
pub struct Input {
    /// The `name` attribute.
    pub name: String,
    /// The `value` attribute, entities decoded.
    pub value: String,
    /// `text`, `hidden`, `password`, `submit`, `checkbox`, ... (`submit` for a `<button>`).
    pub kind: String,
    /// Whether a checkbox or radio is checked.
    pub checked: bool,
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity.strip_prefix('#').and_then(|n| {
                let code = match n.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => n.parse().ok(),
                };
                code.and_then(char::from_u32)
            }),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The attributes of one tag (the text between `<name` and `>`), names lower-cased.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let bytes = tag.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' && bytes[i] != b'/' {
            i += 1;
        }
        if start == i {
            break;
        }
        let name = tag[start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                i += 1;
                let vstart = i;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                value = decode_entities(&tag[vstart..i]);
                i += 1;
            } else {
                let vstart = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = decode_entities(&tag[vstart..i]);
            }
        }
        out.push((name, value));
    }
    out
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Every tag named `name` in `html` (case-insensitive), as (offset, attribute text).
fn tags<'a>(html: &'a str, lower: &str, name: &str) -> Vec<(usize, &'a str)> {
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = lower[from..].find(&open) {
        let at = from + found;
        let after = at + open.len();
        let boundary = lower[after..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_whitespace() || c == '>' || c == '/');
        let Some(close) = lower[after..].find('>') else {
            break;
        };
        if boundary {
            out.push((at, &html[after..after + close]));
        }
        from = after + close;
    }
    out
}

/// The forms of a page.
pub fn forms(html: &str) -> Vec<Form> {
    let lower = html.to_ascii_lowercase();
    let form_tags = tags(html, &lower, "form");
    let mut out = Vec::new();
    for (i, (at, tag)) in form_tags.iter().enumerate() {
        let attrs = attributes(tag);
        let end = lower[*at..]
            .find("</form")
            .map(|e| at + e)
            .or_else(|| form_tags.get(i + 1).map(|(next, _)| *next))
            .unwrap_or(html.len());
        let body = &html[*at..end];
        let body_lower = &lower[*at..end];
        let mut controls: Vec<(usize, Input)> = Vec::new();
        for (offset, tag) in tags(body, body_lower, "input") {
            let a = attributes(tag);
            let Some(name) = attr(&a, "name").filter(|n| !n.is_empty()) else {
                continue;
            };
            controls.push((
                offset,
                Input {
                    name: name.to_owned(),
                    value: attr(&a, "value").unwrap_or_default().to_owned(),
                    kind: attr(&a, "type").unwrap_or("text").to_ascii_lowercase(),
                    checked: attr(&a, "checked").is_some(),
                },
            ));
        }
        for (offset, tag) in tags(body, body_lower, "button") {
            let a = attributes(tag);
            let kind = attr(&a, "type").unwrap_or("submit").to_ascii_lowercase();
            if kind != "submit" {
                continue;
            }
            controls.push((
                offset,
                Input {
                    name: attr(&a, "name").unwrap_or_default().to_owned(),
                    value: attr(&a, "value").unwrap_or_default().to_owned(),
                    kind,
                    checked: false,
                },
            ));
        }
        controls.sort_by_key(|(offset, _)| *offset);
        out.push(Form {
            action: attr(&attrs, "action").unwrap_or_default().to_owned(),
            method: attr(&attrs, "method").unwrap_or("get").to_ascii_lowercase(),
            inputs: controls.into_iter().map(|(_, input)| input).collect(),
        });
    }
    out
}

const USERNAME_NAMES: [&str; 5] = ["username", "user", "login", "email", "name"];
const APPROVING: [&str; 8] = [
    "approve",
    "allow",
    "accept",
    "consent",
    "grant",
    "yes",
    "authorize",
    "sign",
];

impl Form {
    /// Whether the form asks for a password.
    pub fn has_password(&self) -> bool {
        self.inputs.iter().any(|i| i.kind == "password")
    }

    /// The fields a browser would send, with the credentials filled in and the approving button pressed.
    pub fn fill(&self, username: &str, password: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let submits: Vec<&Input> = self
            .inputs
            .iter()
            .filter(|i| (i.kind == "submit" || i.kind == "image") && !i.name.is_empty())
            .collect();
        let approving = |i: &Input| {
            let text = format!("{} {}", i.name, i.value).to_ascii_lowercase();
            APPROVING.iter().any(|w| text.contains(w))
        };
        let pressed = submits
            .iter()
            .copied()
            .find(|i| approving(i))
            .or_else(|| submits.first().copied());
        for input in &self.inputs {
            let value = match input.kind.as_str() {
                "password" => password.to_owned(),
                "text" | "email" if USERNAME_NAMES.contains(&input.name.to_ascii_lowercase().as_str()) => {
                    username.to_owned()
                }
                "checkbox" | "radio" if !input.checked => continue,
                "submit" | "image" => {
                    if pressed.is_some_and(|p| std::ptr::eq(p, input)) {
                        input.value.clone()
                    } else {
                        continue;
                    }
                }
                "button" | "reset" | "file" => continue,
                _ => input.value.clone(),
            };
            out.push((input.name.clone(), value));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN: &str = r#"<!doctype html><html><body>
      <form method="POST" action="/login?return=%2Fauthorize%3Fa%3D1&amp;b=2">
        <input type="hidden" name="csrf" value="abc&#x2F;def">
        <label>User <input name="username" autocomplete="username"></label>
        <label>Password <input type=password name=password></label>
        <input type="checkbox" name="remember">
        <button type="submit">Sign in</button>
      </form></body></html>"#;

    #[test]
    fn a_login_form_keeps_its_csrf_token_and_gets_the_credentials() {
        let forms = forms(LOGIN);
        assert_eq!(forms.len(), 1);
        let form = &forms[0];
        assert_eq!(form.method, "post");
        assert_eq!(form.action, "/login?return=%2Fauthorize%3Fa%3D1&b=2");
        assert!(form.has_password());
        assert_eq!(
            form.fill("alice", "s3cret"),
            vec![
                ("csrf".to_owned(), "abc/def".to_owned()),
                ("username".to_owned(), "alice".to_owned()),
                ("password".to_owned(), "s3cret".to_owned()),
            ]
        );
    }

    #[test]
    fn a_consent_form_presses_the_approving_button() {
        let html = r#"<form method=post><input type=hidden name=csrf_token value=t>
            <button name="decision" value="deny">Deny</button>
            <button name="decision" value="allow">Allow</button></form>"#;
        let forms = forms(html);
        assert_eq!(
            forms[0].fill("u", "p"),
            vec![
                ("csrf_token".to_owned(), "t".to_owned()),
                ("decision".to_owned(), "allow".to_owned()),
            ]
        );
        assert_eq!(forms[0].action, "");
    }

    #[test]
    fn entities_decode() {
        assert_eq!(decode_entities("a&amp;b&#39;c&lt;&unknown;"), "a&b'c<&unknown;");
    }
}
