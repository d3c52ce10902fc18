//! Headless Chromium: a person types a serial on the home page and reads the answer.
//! Skipped only when chromedriver is absent and CI is unset; in CI it must run.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};

use crate::helpers::spawn_app;

pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> Option<String> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
}

pub async fn browser() -> Option<(fantoccini::Client, Driver, tempdir::TempProfile)> {
    let Some(driver_bin) = chromedriver() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromedriver is not installed, and browser tests must run in CI");
        }
        eprintln!(
            "skipping browser test: chromedriver not installed (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Driver(
        Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let profile = tempdir::TempProfile::new();
    let chromium = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("/usr/bin/chromium");
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--lang=en-US", "--window-size=412,915", format!("--user-data-dir={}", profile.0.display())]
        }
    });
    let caps: serde_json::Map<String, serde_json::Value> = caps.as_object().unwrap().clone();
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut last = None;
    for _ in 0..50 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => return Some((c, driver, profile)),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("could not start a browser session: {last:?}");
}

pub mod tempdir {
    pub struct TempProfile(pub std::path::PathBuf);
    impl TempProfile {
        pub fn new() -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "recall-portal-chrome-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempProfile(p)
        }
    }
    impl Drop for TempProfile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[tokio::test]
async fn a_customer_types_a_serial_and_reads_the_answer() {
    let app = spawn_app().await;
    let Some((client, _driver, _profile)) = browser().await else {
        return;
    };
    let result = async {
        client.goto(&format!("{}/", app.address)).await?;
        let input = client.find(Locator::Id("serial")).await?;
        input.send_keys("sn0700").await?;
        client
            .find(Locator::Css("form.lookup button[type=submit]"))
            .await?
            .click()
            .await?;
        let h1 = client
            .wait()
            .for_element(Locator::Css("h1#unit-title"))
            .await?;
        let title = h1.text().await?;
        let warranty = client
            .find(Locator::Id("warranty-title"))
            .await?
            .text()
            .await?;
        let recall = client
            .find(Locator::Id("recall-title"))
            .await?
            .text()
            .await?;

        // An invalid serial comes back with the message next to the field and the text kept.
        client.goto(&format!("{}/", app.address)).await?;
        client
            .find(Locator::Id("serial"))
            .await?
            .send_keys("AB#1")
            .await?;
        client
            .find(Locator::Css("form.lookup button[type=submit]"))
            .await?
            .click()
            .await?;
        let err = client
            .wait()
            .for_element(Locator::Id("serial-error"))
            .await?
            .text()
            .await?;
        let kept = client
            .find(Locator::Id("serial"))
            .await?
            .prop("value")
            .await?;
        Ok::<_, fantoccini::error::CmdError>((title, warranty, recall, err, kept))
    }
    .await;
    let _ = client.close().await;
    let (title, warranty, recall, err, kept) = result.expect("browser journey");
    assert_eq!(title, "Arden Tools PowerCell 18V 5.0 Ah battery pack");
    assert!(warranty.starts_with("Under warranty until"), "{warranty}");
    assert_eq!(recall, "Safety recall: no open recall");
    assert_eq!(err, "A serial number cannot contain “#”");
    assert_eq!(kept.as_deref(), Some("AB#1"));
}

#[tokio::test]
async fn a_customer_signs_up_follows_the_mailed_link_and_signs_in() {
    let smtp = crate::smtp::SmtpServer::start().await;
    let port = smtp.port;
    let app = crate::helpers::spawn_app_with(move |c| {
        c.run_worker = true;
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await;
    let Some((client, _driver, _profile)) = browser().await else {
        return;
    };
    let password = "Juniper-Falcon-Meadow-31";
    let result = async {
        client.goto(&format!("{}/signup", app.address)).await?;
        client
            .find(Locator::Id("email"))
            .await?
            .send_keys("kim@example.com")
            .await?;
        client
            .find(Locator::Id("password"))
            .await?
            .send_keys(password)
            .await?;
        client
            .find(Locator::Css("form button[type=submit]"))
            .await?
            .click()
            .await?;
        let sent = client
            .wait()
            .for_element(Locator::Id("msg-title"))
            .await?
            .text()
            .await?;

        let mail = smtp.wait_for_mail_to("kim@example.com").await;
        let link = crate::smtp::link_in(&mail, &format!("{}/account/verify?token=", app.address));
        client.goto(&link).await?;
        client
            .find(Locator::Css("form button[type=submit]"))
            .await?
            .click()
            .await?;
        let notice = client
            .wait()
            .for_element(Locator::Css("p.notice.ok"))
            .await?
            .text()
            .await?;

        client
            .find(Locator::Id("email"))
            .await?
            .send_keys("kim@example.com")
            .await?;
        client
            .find(Locator::Id("password"))
            .await?
            .send_keys(password)
            .await?;
        client
            .find(Locator::Css("form button[type=submit]"))
            .await?
            .click()
            .await?;
        let title = client
            .wait()
            .for_element(Locator::Id("acct-title"))
            .await?
            .text()
            .await?;
        let body = client.source().await?;
        Ok::<_, fantoccini::error::CmdError>((sent, notice, title, body))
    }
    .await;
    let _ = client.close().await;
    let (sent, notice, title, body) = result.expect("browser journey");
    assert_eq!(sent, "Check your email");
    assert_eq!(
        notice,
        "Your email address is confirmed. Sign in to continue."
    );
    assert_eq!(title, "Your account");
    assert!(body.contains("kim@example.com") && !body.contains("not confirmed"));
}
