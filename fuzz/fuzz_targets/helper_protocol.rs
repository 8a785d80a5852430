//! The key-helper protocol parsers on hostile input: never panic, and
//! whatever parses survives a round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tap_core::keys::protocol::{Request, Response, MAX_MESSAGE_BYTES};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = Request::from_json(data) {
        let wire = request.to_json();
        // to_json adds a newline; a maximal message may not fit again.
        if wire.len() <= MAX_MESSAGE_BYTES {
            assert_eq!(Request::from_json(&wire).ok().as_ref(), Some(&request));
        }
    }
    if let Ok(response) = Response::from_json(data) {
        let wire = response.to_json();
        if wire.len() <= MAX_MESSAGE_BYTES {
            assert_eq!(Response::from_json(&wire).ok().as_ref(), Some(&response));
        }
    }
});
