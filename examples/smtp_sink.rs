//! A counting SMTP sink on loopback for `bench/outbox/run`: speaks enough ESMTP for lettre,
//! keeps nothing, and prints the number of messages accepted to the file given as its second
//! argument every 100 ms.
//!
//!   cargo run --release --example smtp_sink -- 2525 /tmp/count

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(2525);
    let out = args.next().unwrap_or_else(|| "/dev/stdout".into());
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        // Written beside and renamed, so a reader never sees a half-written number.
        let tmp = format!("{out}.tmp");
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if tokio::fs::write(&tmp, c.load(Ordering::Relaxed).to_string())
                .await
                .is_ok()
            {
                let _ = tokio::fs::rename(&tmp, &out).await;
            }
        }
    });
    loop {
        let (socket, _) = listener.accept().await?;
        let count = count.clone();
        tokio::spawn(async move {
            let _ = session(socket, count).await;
        });
    }
}

async fn session(socket: tokio::net::TcpStream, count: Arc<AtomicU64>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 localhost ESMTP sink\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                write
                    .write_all(b"250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                    .await?
            }
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => write.write_all(b"250 OK\r\n").await?,
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                while let Some(l) = lines.next_line().await? {
                    if l == "." {
                        break;
                    }
                }
                count.fetch_add(1, Ordering::Relaxed);
                write.write_all(b"250 OK queued\r\n").await?;
            }
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => write.write_all(b"502 Command not implemented\r\n").await?,
        }
    }
    Ok(())
}
