//! Writes fuzz/seeds/daemon_request/: one framed message of each kind a
//! client sends tapd, plus a few refusals it must survive.
//!
//!     cargo run --example make_request_seeds        (from fuzz/)

use std::path::Path;
use tap_protocol::admin::AdminRequest;
use tap_protocol::frame::encode;
use tap_protocol::helper::Bytes;
use tap_protocol::secret::Secret;
use tap_protocol::signin::{KeyAnswer, Mode, Origin, SignInRequest};
use tap_protocol::{ErrorKind, Refusal, Request, Response};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/daemon_request");
    std::fs::create_dir_all(&dir).unwrap();
    let origin = Origin {
        service: "sshd".into(),
        rhost: "192.0.2.7".into(),
        tty: "ssh".into(),
    };
    let requests = [
        Request::Ping,
        Request::Admin(AdminRequest::Init),
        Request::SignIn(SignInRequest::Plan {
            user: "alice".into(),
            mode: Mode::default(),
            origin: origin.clone(),
        }),
        Request::SignIn(SignInRequest::CheckPass {
            user: "alice".into(),
            pass: Secret::new("ABCD-EFGH-JK"),
            origin: origin.clone(),
        }),
        Request::SignIn(SignInRequest::KeyAnswer {
            user: "bob".into(),
            challenge: Bytes(vec![0x42; 32]),
            answer: KeyAnswer::Asserted {
                credential_id: Bytes(vec![0xc5; 64]),
                authenticator_data: Bytes(vec![7; 37]),
                signature: Bytes(vec![9; 72]),
            },
            origin,
        }),
    ];
    for (i, request) in requests.iter().enumerate() {
        std::fs::write(dir.join(format!("request_{i}")), encode(request).unwrap()).unwrap();
    }
    let response = Response::Refused(Refusal::new(ErrorKind::Busy, "try again"));
    std::fs::write(dir.join("response_0"), encode(&response).unwrap()).unwrap();
    // Hostile shapes: another version, a length far over the limit.
    std::fs::write(
        dir.join("other_version"),
        b"\0\0\0\x15{\"v\":2,\"body\":\"ping\"}",
    )
    .unwrap();
    std::fs::write(dir.join("too_large"), b"\x7f\xff\xff\xff{").unwrap();
    println!("seeds written under {}", dir.display());
}
