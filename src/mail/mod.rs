//! Outgoing mail: every message has a text and an HTML body rendered from the two templates in
//! `templates/mail/`, and is queued in the outbox in the transaction that causes it.

pub mod messages;

use askama::Template;

/// A rendered mail, ready for the outbox.
#[derive(Debug, Clone)]
pub struct Mail {
    pub kind: &'static str,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The content of a mail: a greeting, paragraphs, an optional button (label, URL) and closing
/// paragraphs. Both bodies are rendered from it, so they always say the same thing.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub greeting: String,
    pub paragraphs: Vec<String>,
    pub action: Option<(String, String)>,
    pub after: Vec<String>,
}

#[derive(Template)]
#[template(path = "mail/message.txt")]
struct TextBody<'a> {
    m: &'a Message,
}

#[derive(Template)]
#[template(path = "mail/message.html")]
struct HtmlBody<'a> {
    m: &'a Message,
    subject: &'a str,
}

impl Message {
    pub fn into_mail(self, kind: &'static str, to: &str, subject: &str) -> anyhow::Result<Mail> {
        Ok(Mail {
            kind,
            to: to.to_owned(),
            subject: subject.to_owned(),
            text: TextBody { m: &self }.render()?,
            html: HtmlBody { m: &self, subject }.render()?,
        })
    }
}
