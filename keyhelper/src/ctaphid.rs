//! CTAPHID framing (CTAP 2.x §11.2): a channel on a 64-byte-report HID
//! device, and one CBOR message at a time over it.
//!
//! ctap-hid-fido2 has this too, but privately, and its public operations
//! hash the "challenge" they are given into the clientDataHash; the helper
//! protocol hands us the clientDataHash itself, which must reach the
//! authenticator untouched. So makeCredential and getAssertion go over this
//! small channel; ctap-hid-fido2 still does the PIN protocol.

use std::time::{Duration, Instant};

use hidapi::HidError;

pub const REPORT: usize = 64;
const INIT_DATA: usize = REPORT - 7;
const CONT_DATA: usize = REPORT - 5;
const BROADCAST: [u8; 4] = [0xff; 4];

const CMD_INIT: u8 = 0x86;
const CMD_CBOR: u8 = 0x90;
const CMD_KEEPALIVE: u8 = 0xbb;
const CMD_ERROR: u8 = 0xbf;

/// How long one message may take, keep-alives included, before this side
/// gives up (the caller kills the helper at its touch timeout anyway).
pub const MESSAGE_DEADLINE: Duration = Duration::from_secs(120);
/// How long CTAPHID_INIT may take.
const INIT_DEADLINE: Duration = Duration::from_secs(3);

/// One HID device: write and read 64-byte reports.
pub trait HidIo {
    fn write_report(&mut self, report: &[u8; REPORT]) -> Result<(), HidError>;
    /// Read one report; Ok(None) when nothing came within `timeout`.
    fn read_report(&mut self, timeout: Duration) -> Result<Option<[u8; REPORT]>, HidError>;
}

#[derive(Debug)]
pub enum TransportError {
    /// A CTAP2 status byte other than success.
    Status(u8),
    /// A CTAPHID_ERROR code (busy channel, bad length, ...).
    Hid(u8),
    /// The device did not answer in time.
    Timeout,
    /// I/O failed or the device sent something malformed.
    Io(LinkError),
}

/// What went wrong below CTAP2: the HID reports, or their framing.
#[derive(Debug)]
pub enum LinkError {
    /// Writing or reading a report failed.
    Report(HidError),
    /// The OS random source failed (the channel's nonce).
    Random(getrandom::Error),
    /// More than one CTAPHID message can carry.
    TooLong(usize),
    TooManyPackets,
    /// A new message began before this one ended.
    Interrupted,
    OutOfSequence {
        got: u8,
        due: u8,
    },
    EmptyResponse,
    UnexpectedCommand(u8),
    /// ctap-hid-fido2's PIN protocol failed; that library reports only text.
    PinProtocol(String),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Report(e) => write!(f, "{e}"),
            LinkError::Random(e) => write!(f, "{e}"),
            LinkError::TooLong(size) => write!(f, "message of {size} bytes is too long"),
            LinkError::TooManyPackets => f.write_str("too many packets"),
            LinkError::Interrupted => f.write_str("message interrupted"),
            LinkError::OutOfSequence { got, due } => {
                write!(f, "continuation packet {got} where {due} was due")
            }
            LinkError::EmptyResponse => f.write_str("empty CBOR response"),
            LinkError::UnexpectedCommand(command) => {
                write!(f, "unexpected CTAPHID command 0x{command:02x}")
            }
            LinkError::PinProtocol(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for LinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LinkError::Report(e) => Some(e),
            LinkError::Random(e) => Some(e),
            _ => None,
        }
    }
}

fn report_failed(e: HidError) -> TransportError {
    TransportError::Io(LinkError::Report(e))
}

pub struct Channel<H: HidIo> {
    io: H,
    cid: [u8; 4],
}

impl<H: HidIo> Channel<H> {
    /// Allocate a channel with CTAPHID_INIT and a fresh nonce.
    pub fn open(mut io: H) -> Result<Self, TransportError> {
        let mut nonce = [0u8; 8];
        getrandom::getrandom(&mut nonce).map_err(|e| TransportError::Io(LinkError::Random(e)))?;
        let packets = frame(BROADCAST, CMD_INIT, &nonce)?;
        for packet in &packets {
            io.write_report(packet).map_err(report_failed)?;
        }
        let deadline = Instant::now() + INIT_DEADLINE;
        loop {
            let (cmd, data) = read_message(&mut io, BROADCAST, deadline)?;
            if cmd == CMD_INIT && data.len() >= 12 && data[..8] == nonce {
                let cid = [data[8], data[9], data[10], data[11]];
                return Ok(Channel { io, cid });
            }
            if cmd == CMD_ERROR {
                return Err(TransportError::Hid(data.first().copied().unwrap_or(0)));
            }
            // Someone else's INIT answer on the broadcast channel: not ours.
        }
    }

    /// Send one CTAP2 command (`command` byte, then CBOR) and return the
    /// response's CBOR, or its status byte as an error.
    pub fn cbor(&mut self, command: u8, cbor: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut payload = Vec::with_capacity(1 + cbor.len());
        payload.push(command);
        payload.extend_from_slice(cbor);
        for packet in &frame(self.cid, CMD_CBOR, &payload)? {
            self.io.write_report(packet).map_err(report_failed)?;
        }
        let deadline = Instant::now() + MESSAGE_DEADLINE;
        loop {
            let (cmd, data) = read_message(&mut self.io, self.cid, deadline)?;
            match cmd {
                CMD_KEEPALIVE => continue,
                CMD_ERROR => return Err(TransportError::Hid(data.first().copied().unwrap_or(0))),
                CMD_CBOR => {
                    let Some((&status, rest)) = data.split_first() else {
                        return Err(TransportError::Io(LinkError::EmptyResponse));
                    };
                    return if status == 0 {
                        Ok(rest.to_vec())
                    } else {
                        Err(TransportError::Status(status))
                    };
                }
                other => return Err(TransportError::Io(LinkError::UnexpectedCommand(other))),
            }
        }
    }
}

/// Split a message into an initialization packet and continuation packets.
pub fn frame(cid: [u8; 4], cmd: u8, data: &[u8]) -> Result<Vec<[u8; REPORT]>, TransportError> {
    let len = u16::try_from(data.len())
        .ok()
        .filter(|_| data.len() <= INIT_DATA + 128 * CONT_DATA)
        .ok_or(TransportError::Io(LinkError::TooLong(data.len())))?;
    let mut packets = Vec::new();
    let mut first = [0u8; REPORT];
    first[..4].copy_from_slice(&cid);
    first[4] = cmd;
    first[5..7].copy_from_slice(&len.to_be_bytes());
    let head = data.len().min(INIT_DATA);
    first[7..7 + head].copy_from_slice(&data[..head]);
    packets.push(first);
    for (seq, chunk) in data[head..].chunks(CONT_DATA).enumerate() {
        let mut packet = [0u8; REPORT];
        packet[..4].copy_from_slice(&cid);
        packet[4] = u8::try_from(seq).map_err(|_| TransportError::Io(LinkError::TooManyPackets))?;
        packet[5..5 + chunk.len()].copy_from_slice(chunk);
        packets.push(packet);
    }
    Ok(packets)
}

/// Read one whole message on `cid`, skipping other channels' packets.
fn read_message<H: HidIo>(
    io: &mut H,
    cid: [u8; 4],
    deadline: Instant,
) -> Result<(u8, Vec<u8>), TransportError> {
    let first = loop {
        let packet = read_until(io, deadline)?;
        if packet[..4] == cid && packet[4] & 0x80 != 0 {
            break packet;
        }
    };
    let cmd = first[4];
    let len = usize::from(u16::from_be_bytes([first[5], first[6]]));
    let mut data = Vec::with_capacity(len);
    data.extend_from_slice(&first[7..7 + len.min(INIT_DATA)]);
    let mut seq = 0u8;
    while data.len() < len {
        let packet = read_until(io, deadline)?;
        if packet[..4] != cid {
            continue;
        }
        if packet[4] & 0x80 != 0 {
            // A new initialization packet in the middle: keep-alives may
            // interleave on some devices; anything else is a broken message.
            if packet[4] == CMD_KEEPALIVE {
                continue;
            }
            return Err(TransportError::Io(LinkError::Interrupted));
        }
        if packet[4] != seq {
            return Err(TransportError::Io(LinkError::OutOfSequence {
                got: packet[4],
                due: seq,
            }));
        }
        let take = (len - data.len()).min(CONT_DATA);
        data.extend_from_slice(&packet[5..5 + take]);
        seq = seq.wrapping_add(1);
    }
    Ok((cmd, data))
}

fn read_until<H: HidIo>(io: &mut H, deadline: Instant) -> Result<[u8; REPORT], TransportError> {
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(TransportError::Timeout)?;
        if let Some(packet) = io
            .read_report(left.min(Duration::from_millis(500)))
            .map_err(report_failed)?
        {
            return Ok(packet);
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A device that answers whole messages through a closure, splitting
    /// its answers into packets, with keep-alives and another channel's
    /// chatter mixed in.
    pub struct FakeDevice<F: FnMut(u8, &[u8]) -> Vec<u8>> {
        pub answer: F,
        pub cid: [u8; 4],
        pub incoming: Vec<u8>,
        pub expect: Option<(u8, usize)>,
        pub seq: u8,
        pub outgoing: VecDeque<[u8; REPORT]>,
        pub keepalives: usize,
        pub written: Vec<[u8; REPORT]>,
    }

    impl<F: FnMut(u8, &[u8]) -> Vec<u8>> FakeDevice<F> {
        pub fn new(answer: F) -> Self {
            FakeDevice {
                answer,
                cid: [0x11, 0x22, 0x33, 0x44],
                incoming: Vec::new(),
                expect: None,
                seq: 0,
                outgoing: VecDeque::new(),
                keepalives: 2,
                written: Vec::new(),
            }
        }

        fn queue(&mut self, cid: [u8; 4], cmd: u8, data: &[u8]) {
            for packet in frame(cid, cmd, data).unwrap() {
                self.outgoing.push_back(packet);
            }
        }
    }

    impl<F: FnMut(u8, &[u8]) -> Vec<u8>> HidIo for FakeDevice<F> {
        fn write_report(&mut self, report: &[u8; REPORT]) -> Result<(), HidError> {
            self.written.push(*report);
            let cid = [report[0], report[1], report[2], report[3]];
            if report[4] & 0x80 != 0 {
                let len = usize::from(u16::from_be_bytes([report[5], report[6]]));
                self.expect = Some((report[4], len));
                self.incoming = report[7..7 + len.min(INIT_DATA)].to_vec();
                self.seq = 0;
            } else {
                assert_eq!(report[4], self.seq, "continuation order");
                self.seq += 1;
                let (_, len) = self.expect.unwrap();
                let take = (len - self.incoming.len()).min(CONT_DATA);
                self.incoming.extend_from_slice(&report[5..5 + take]);
            }
            let (cmd, len) = self.expect.unwrap();
            if self.incoming.len() < len {
                return Ok(());
            }
            let message = std::mem::take(&mut self.incoming);
            // Chatter from another channel first.
            self.queue([9, 9, 9, 9], CMD_CBOR, &[0, 0xa0]);
            match cmd {
                CMD_INIT => {
                    assert_eq!(cid, BROADCAST);
                    // Somebody else's INIT answer, then ours.
                    let mut other = vec![0u8; 8];
                    other.extend_from_slice(&[5, 5, 5, 5, 2, 1, 0, 0, 5]);
                    self.queue(BROADCAST, CMD_INIT, &other);
                    let mut data = message.clone();
                    data.extend_from_slice(&self.cid);
                    data.extend_from_slice(&[2, 1, 0, 0, 5]);
                    self.queue(BROADCAST, CMD_INIT, &data);
                }
                CMD_CBOR => {
                    assert_eq!(cid, self.cid);
                    for _ in 0..self.keepalives {
                        self.queue(self.cid, CMD_KEEPALIVE, &[2]);
                    }
                    let answer = (self.answer)(message[0], &message[1..]);
                    self.queue(self.cid, CMD_CBOR, &answer);
                }
                other => panic!("unexpected command {other:x}"),
            }
            Ok(())
        }

        fn read_report(&mut self, _timeout: Duration) -> Result<Option<[u8; REPORT]>, HidError> {
            Ok(self.outgoing.pop_front())
        }
    }

    #[test]
    fn framing_round_trips_at_every_length() {
        for len in [0, 1, 56, 57, 58, 115, 116, 117, 1000, 7609] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let packets = frame([1, 2, 3, 4], CMD_CBOR, &data).unwrap();
            let expected_packets = if len <= INIT_DATA {
                1
            } else {
                1 + (len - INIT_DATA).div_ceil(CONT_DATA)
            };
            assert_eq!(packets.len(), expected_packets, "len {len}");
            let mut queue: VecDeque<_> = packets.into();
            struct Q<'a>(&'a mut VecDeque<[u8; REPORT]>);
            impl HidIo for Q<'_> {
                fn write_report(&mut self, _: &[u8; REPORT]) -> Result<(), HidError> {
                    Ok(())
                }
                fn read_report(&mut self, _: Duration) -> Result<Option<[u8; REPORT]>, HidError> {
                    Ok(self.0.pop_front())
                }
            }
            let (cmd, got) = read_message(
                &mut Q(&mut queue),
                [1, 2, 3, 4],
                Instant::now() + Duration::from_secs(1),
            )
            .unwrap();
            assert_eq!(cmd, CMD_CBOR);
            assert_eq!(got, data);
        }
        assert!(frame([0; 4], CMD_CBOR, &vec![0; 7610]).is_err());
    }

    #[test]
    fn channel_init_and_cbor_with_keepalives_and_chatter() {
        let device = FakeDevice::new(|command, cbor| {
            assert_eq!(command, 0x04);
            assert_eq!(cbor, b"");
            let mut answer = vec![0u8];
            answer.extend(std::iter::repeat_n(0x42, 300));
            answer
        });
        let mut channel = Channel::open(device).unwrap();
        assert_eq!(channel.cid, [0x11, 0x22, 0x33, 0x44]);
        let got = channel.cbor(0x04, &[]).unwrap();
        assert_eq!(got, vec![0x42; 300]);
    }

    #[test]
    fn status_and_hid_errors() {
        let device = FakeDevice::new(|_, _| vec![0x2e]);
        let mut channel = Channel::open(device).unwrap();
        assert!(matches!(
            channel.cbor(0x02, &[0xa0]),
            Err(TransportError::Status(0x2e))
        ));
    }

    #[test]
    fn silence_times_out() {
        struct Mute;
        impl HidIo for Mute {
            fn write_report(&mut self, _: &[u8; REPORT]) -> Result<(), HidError> {
                Ok(())
            }
            fn read_report(&mut self, timeout: Duration) -> Result<Option<[u8; REPORT]>, HidError> {
                std::thread::sleep(timeout.min(Duration::from_millis(50)));
                Ok(None)
            }
        }
        let start = Instant::now();
        assert!(matches!(Channel::open(Mute), Err(TransportError::Timeout)));
        assert!(start.elapsed() >= INIT_DEADLINE);
    }
}
