//! The words of every mail the portal sends about accounts.

use super::{Mail, Message};

fn encode(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `next`: where to go after confirming and signing in (a local path, e.g. a registration
/// waiting to be finished).
pub fn verify_email(
    base_url: &str,
    to: &str,
    token: &str,
    next: Option<&str>,
) -> anyhow::Result<Mail> {
    let mut link = format!("{base_url}/account/verify?token={token}");
    let mut paragraphs = vec!["Please confirm that this is your email address, so we can reach you about the products you register (safety recalls and warranty).".to_owned()];
    if let Some(next) = next {
        link.push_str(&format!("&next={}", encode(next)));
        if next.starts_with("/register/finish") {
            paragraphs.push("Your product registration is kept: after confirming, sign in and it is one click away.".into());
        }
    }
    Message {
        greeting: "Hello,".into(),
        paragraphs,
        action: Some(("Confirm my email address".into(), link)),
        after: vec!["The link works once and for 48 hours. If you did not create an account, ignore this mail: nothing happens without the link.".into()],
    }
    .into_mail("verify_email", to, "Confirm your email address")
}

/// Sent instead of a verification mail when someone signs up with an address that already has
/// an account: the sign-up page answers the same either way, and the owner learns of it.
pub fn signup_existing(base_url: &str, to: &str, next: Option<&str>) -> anyhow::Result<Mail> {
    let link = match next {
        Some(n) => format!("{base_url}/login?next={}", encode(n)),
        None => format!("{base_url}/login"),
    };
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec!["Someone tried to create an account with this email address, but you already have one.".into()],
        action: Some(("Sign in".into(), link)),
        after: vec![format!("Forgotten your password? Reset it at {base_url}/password/forgot. If this was not you, you can ignore this mail.")],
    }
    .into_mail("signup_existing", to, "You already have an account")
}

pub fn reset_password(base_url: &str, to: &str, token: &str) -> anyhow::Result<Mail> {
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec!["We received a request to reset the password of your account.".into()],
        action: Some(("Choose a new password".into(), format!("{base_url}/password/reset?token={token}"))),
        after: vec!["The link works once and for one hour. If you did not ask for this, ignore this mail: your password stays as it is.".into()],
    }
    .into_mail("reset_password", to, "Reset your password")
}

pub fn password_changed(base_url: &str, to: &str) -> anyhow::Result<Mail> {
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec!["The password of your account was just changed, and every device was signed out.".into()],
        action: None,
        after: vec![format!("If this was not you, reset your password now at {base_url}/password/forgot and contact support.")],
    }
    .into_mail("password_changed", to, "Your password was changed")
}

/// Two-step sign-in was switched on (`on`) or off (`Some(false)`), or reset by an
/// administrator (`None`).
pub fn second_factor_changed(base_url: &str, to: &str, on: Option<bool>) -> anyhow::Result<Mail> {
    let (what, subject) = match on {
        Some(true) => (
            "Two-step sign-in was just switched on for your account: from now on a code from your authenticator app is asked after your password, and every other device was signed out.",
            "Two-step sign-in is on",
        ),
        Some(false) => (
            "Two-step sign-in was just switched off for your account: your password alone signs in again.",
            "Two-step sign-in is off",
        ),
        None => (
            "An administrator reset the two-step sign-in of your account (a lost phone, for example), and every device was signed out. Set it up again from your account page.",
            "Your two-step sign-in was reset",
        ),
    };
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec![what.into()],
        action: None,
        after: vec![format!("If this was not you, reset your password now at {base_url}/password/forgot and contact support.")],
    }
    .into_mail("second_factor_changed", to, subject)
}

pub fn confirm_new_email(base_url: &str, to: &str, token: &str) -> anyhow::Result<Mail> {
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec!["Please confirm that you want to use this address for your account from now on.".into()],
        action: Some(("Confirm the new address".into(), format!("{base_url}/account/email/confirm?token={token}"))),
        after: vec!["The link works once and for 48 hours. Until you confirm, your account keeps its current address.".into()],
    }
    .into_mail("confirm_new_email", to, "Confirm your new email address")
}

pub fn email_change_requested(to: &str, new_email: &str) -> anyhow::Result<Mail> {
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec![format!("Someone signed in to your account asked to change its email address to {new_email}. It changes only when that address confirms.")],
        action: None,
        after: vec!["If this was not you, change your password now and contact support.".into()],
    }
    .into_mail("email_change_requested", to, "Your account's email address is changing")
}

pub fn invite(base_url: &str, to: &str, role: &str, token: &str) -> anyhow::Result<Mail> {
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec![format!("You have been invited to the product safety and warranty portal as {role}. Choose a password to accept.")],
        action: Some(("Accept the invitation".into(), format!("{base_url}/invite/accept?token={token}"))),
        after: vec!["The link works once and for 7 days.".into()],
    }
    .into_mail("invite", to, "You are invited to the warranty and recall portal")
}

pub fn account_deleted(to: &str) -> anyhow::Result<Mail> {
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec![
            "Your account has been deleted and your personal data erased.".into(),
            "As the law requires, we keep the contact details of products you registered for at least six years after their manufacture, and use them only to tell you about a safety recall.".into(),
        ],
        action: None,
        after: vec![],
    }
    .into_mail("account_deleted", to, "Your account was deleted")
}

/// A registration took effect.
pub fn registration_confirmed(
    base_url: &str,
    to: &str,
    product: &str,
    serial: &str,
) -> anyhow::Result<Mail> {
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec![
            format!("Your {product} with serial number {serial} is registered to you."),
            "We will use this address to tell you directly about any safety recall of it, and about its warranty. We do not use it for anything else unless you agreed to marketing mail.".into(),
        ],
        action: Some(("See my products".into(), format!("{base_url}/account/products"))),
        after: vec!["If you did not register this product, contact support.".into()],
    }
    .into_mail("registration_confirmed", to, "Your product is registered")
}

/// The unit is registered to someone else: the request waits for staff. Names nobody.
pub fn transfer_requested(
    base_url: &str,
    to: &str,
    product: &str,
    serial: &str,
) -> anyhow::Result<Mail> {
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec![
            format!("The {product} with serial number {serial} is already registered to another owner, so we cannot register it to you straight away."),
            "Our staff will check the request (for example with your proof of purchase) and tell you by mail. We never share your details with the other owner, nor theirs with you.".into(),
        ],
        action: Some(("See my products".into(), format!("{base_url}/account/products"))),
        after: vec![],
    }
    .into_mail("transfer_requested", to, "Your registration is being checked")
}

/// Staff approved a transfer: the product is now the requester's.
pub fn transfer_approved(
    base_url: &str,
    to: &str,
    product: &str,
    serial: &str,
) -> anyhow::Result<Mail> {
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec![format!("We checked your request: the {product} with serial number {serial} is now registered to you. We will tell you directly about any safety recall of it.")],
        action: Some(("See my products".into(), format!("{base_url}/account/products"))),
        after: vec![],
    }
    .into_mail("transfer_approved", to, "Your product is registered")
}

/// Staff approved a transfer: the previous owner's registration ended. Names nobody.
pub fn ownership_ended(to: &str, product: &str, serial: &str) -> anyhow::Result<Mail> {
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec![
            format!("The {product} with serial number {serial} has been registered to a new owner after our staff checked their proof of purchase, so it is no longer registered to you."),
            "If you still have this product, reply to this mail or contact support and we will look into it.".into(),
        ],
        action: None,
        after: vec![],
    }
    .into_mail("ownership_ended", to, "A product is no longer registered to you")
}

/// Staff rejected a transfer: the requester learns why, never who owns it.
pub fn transfer_rejected(
    base_url: &str,
    to: &str,
    product: &str,
    serial: &str,
    reason: &str,
) -> anyhow::Result<Mail> {
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec![
            format!(
                "We could not register the {product} with serial number {serial} to you: {reason}"
            ),
            "If you think this is wrong, contact support with your proof of purchase.".into(),
        ],
        action: Some((
            "See my products".into(),
            format!("{base_url}/account/products"),
        )),
        after: vec![],
    }
    .into_mail(
        "transfer_rejected",
        to,
        "We could not register your product",
    )
}

/// Staff rejected a transfer: the owner learns that someone asked, and that nothing changed.
pub fn transfer_refused_owner(to: &str, product: &str, serial: &str) -> anyhow::Result<Mail> {
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec![
            format!("Someone asked to register the {product} with serial number {serial}, which is registered to you. Our staff checked the request and refused it: it stays registered to you."),
            "You do not need to do anything. If you no longer have this product, you can end its registration in your account.".into(),
        ],
        action: None,
        after: vec![],
    }
    .into_mail("transfer_refused_owner", to, "Your product stays registered to you")
}

/// The owner asked, when registering, to be told 30 days before the warranty ends. Sent once.
pub fn warranty_reminder(
    base_url: &str,
    to: &str,
    registration_id: i64,
    product: &str,
    serial: &str,
    ends_on: chrono::NaiveDate,
) -> anyhow::Result<Mail> {
    let date = ends_on.format("%-d %B %Y");
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec![
            format!("The warranty of your {product} with serial number {serial} ends on {date}."),
            format!(
                "If it has a fault, contact us by {date} so that it is handled under the warranty."
            ),
        ],
        action: Some((
            "See this product".into(),
            format!("{base_url}/account/products/{registration_id}"),
        )),
        after: vec![
            "You asked for this reminder when you registered the product. We send it once.".into(),
        ],
    }
    .into_mail(
        "warranty_reminder",
        to,
        &format!("Your warranty ends on {date}"),
    )
}

/// A claim was filed.
pub fn claim_received(
    base_url: &str,
    to: &str,
    number: &str,
    claim_id: i64,
    product: &str,
) -> anyhow::Result<Mail> {
    Message {
        greeting: "Hello,".into(),
        paragraphs: vec![
            format!("We received your warranty claim {number} for your {product}."),
            "Our service staff will assess it and tell you what happens next, with an estimate of when it will be done. You can follow every step on the claim's page.".into(),
        ],
        action: Some(("See my claim".into(), format!("{base_url}/account/claims/{claim_id}"))),
        after: vec![format!("Quote {number} if you contact us about it.")],
    }
    .into_mail("claim_received", to, &format!("Claim {number} received"))
}

/// Something the customer should know about their claim: `what` in a sentence, an optional note
/// from staff, and the current estimate.
pub fn claim_update(
    base_url: &str,
    to: &str,
    number: &str,
    claim_id: i64,
    what: &str,
    note: Option<&str>,
    eta: Option<&str>,
) -> anyhow::Result<Mail> {
    let mut paragraphs = vec![what.to_owned()];
    if let Some(n) = note.filter(|n| !n.trim().is_empty()) {
        paragraphs.push(format!("Our service team writes: {n}"));
    }
    if let Some(eta) = eta {
        paragraphs.push(format!("We expect to be done by {eta}."));
    }
    Message {
        greeting: "Hello,".into(),
        paragraphs,
        action: Some((
            "See my claim".into(),
            format!("{base_url}/account/claims/{claim_id}"),
        )),
        after: vec![format!("Quote {number} if you contact us about it.")],
    }
    .into_mail(
        "claim_update",
        to,
        &format!("Update on your claim {number}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mails_have_both_bodies_with_the_link() {
        let m = verify_email(
            "https://portal.example",
            "ana@example.com",
            "TOKEN123",
            None,
        )
        .unwrap();
        assert!(
            m.text
                .contains("https://portal.example/account/verify?token=TOKEN123")
        );
        assert!(
            m.html
                .contains(r#"href="https://portal.example/account/verify?token=TOKEN123""#)
        );
        assert!(m.html.contains("<!doctype html>"));
        // Text bodies are not HTML-escaped; HTML bodies are.
        let m = email_change_requested("old@example.com", "a&b@example.com").unwrap();
        assert!(m.text.contains("a&b@example.com"));
        assert!(m.html.contains("a&#38;b@example.com") || m.html.contains("a&amp;b@example.com"));
    }

    #[test]
    fn the_reminder_says_the_date_plainly_and_links_to_the_product() {
        let ends = chrono::NaiveDate::from_ymd_opt(2027, 3, 4).unwrap();
        let m = warranty_reminder(
            "https://portal.example",
            "ana@example.com",
            42,
            "Arden Tools PowerCell",
            "SN0042",
            ends,
        )
        .unwrap();
        assert_eq!(m.subject, "Your warranty ends on 4 March 2027");
        assert_eq!(m.kind, "warranty_reminder");
        assert!(m.text.contains(
            "The warranty of your Arden Tools PowerCell with serial number SN0042 ends on 4 March 2027."
        ));
        assert!(
            m.text
                .contains("https://portal.example/account/products/42")
        );
        assert!(
            m.html
                .contains(r#"href="https://portal.example/account/products/42""#)
        );
    }
}
