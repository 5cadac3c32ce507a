//! Dropping a `ChatStream` closes the connection: the server sees EOF at once.

use std::time::Duration;

use futures::StreamExt;
use llmkit_types::{ChatCompletionRequest, ChatMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::support::{client, fast_config, read_request};

#[tokio::test]
async fn dropping_the_stream_closes_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (closed_tx, closed_rx) = oneshot::channel::<Duration>();
    tokio::spawn(async move {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        read_request(&mut sock).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let _ = sock.write_all(head.as_bytes()).await;
        let chunk = |data: &str| format!("{:x}\r\n{data}\r\n", data.len());
        let first = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"tok\"}}]}\n\n";
        let _ = sock.write_all(chunk(first).as_bytes()).await;
        // Then keep the stream open with keep-alives, and watch for the client going away.
        let started = std::time::Instant::now();
        let mut buf = [0u8; 64];
        loop {
            tokio::select! {
                r = sock.read(&mut buf) => {
                    if matches!(r, Ok(0) | Err(_)) {
                        let _ = closed_tx.send(started.elapsed());
                        return;
                    }
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    if sock.write_all(chunk(": keep-alive\n\n").as_bytes()).await.is_err() {
                        let _ = closed_tx.send(started.elapsed());
                        return;
                    }
                }
            }
        }
    });

    let c = client(fast_config(&url, 0));
    let req = ChatCompletionRequest::new("m", vec![ChatMessage::user("hi")]);
    let mut stream = c.chat_stream(&req).await.expect("stream opens");
    let first = stream.next().await.expect("a chunk").expect("not an error");
    assert_eq!(first.delta_text(), Some("tok"));
    drop(stream);
    let after = tokio::time::timeout(Duration::from_secs(3), closed_rx)
        .await
        .expect("the server noticed the close within 3 s")
        .expect("server task reported");
    assert!(after < Duration::from_secs(3), "{after:?}");
}
