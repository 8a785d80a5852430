//! What tapd reads from any local user: arbitrary bytes to the framed
//! reader (`read_message`, with the daemon's size limit) and to the JSON
//! decoder, for requests and, as clients read them, responses. Never
//! panics, never reads past the limit, and whatever decodes survives a
//! round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tap_protocol::frame::{decode, encode};
use tap_protocol::{read_message, FrameError, Request, Response, MAX_REQUEST_BYTES};

fuzz_target!(|data: &[u8]| {
    let mut reader = data;
    match read_message::<Request>(&mut reader, MAX_REQUEST_BYTES) {
        Ok(request) => {
            let consumed = data.len() - reader.len();
            assert!(consumed <= 4 + MAX_REQUEST_BYTES);
            round_trip(&request);
        }
        Err(FrameError::TooLarge { size, limit }) => {
            assert!(size > limit);
            assert_eq!(data.len() - reader.len(), 4, "nothing read past the length");
        }
        Err(_) => {}
    }
    if let Ok(request) = decode::<Request>(data) {
        round_trip(&request);
    }
    if let Ok(response) = decode::<Response>(data) {
        let framed = encode(&response).unwrap();
        let back: Response = read_message(&mut &framed[..], usize::MAX).unwrap();
        assert_eq!(back, response);
    }
});

fn round_trip(request: &Request) {
    let framed = encode(request).unwrap();
    let back: Request = read_message(&mut &framed[..], usize::MAX).unwrap();
    assert_eq!(&back, request);
}
