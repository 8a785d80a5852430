//! The real authenticator: the first FIDO HID device (usage page 0xF1D0)
//! through hidapi's hidraw backend. CTAP2 commands go over our own
//! CTAPHID channel ([`crate::ctaphid`]); the PIN protocol (key agreement,
//! PIN token, pinUvAuthParam) is ctap-hid-fido2's.

use std::ffi::CString;
use std::time::Duration;

use ctap_hid_fido2::{FidoKeyHid, HidParam, LibCfg};
use hidapi::{HidApi, HidDevice, HidError};

use crate::ctaphid::{Channel, HidIo, LinkError, TransportError, REPORT};
use crate::ops::{Device, PinAuth};

const FIDO_USAGE_PAGE: u16 = 0xf1d0;
const FIDO_USAGE: u16 = 0x01;

/// Why no device could be used.
pub enum OpenError {
    NoDevice,
    /// hidapi could not start.
    Api(HidError),
    /// The device is there but could not be opened.
    Open(HidError),
    /// It did not give us a channel.
    Channel(TransportError),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::NoDevice => f.write_str("no security key is plugged in"),
            OpenError::Api(e) => write!(f, "hidapi: {e}"),
            OpenError::Open(e) => write!(f, "cannot open the security key: {e}"),
            OpenError::Channel(TransportError::Io(why)) => write!(f, "security key I/O: {why}"),
            OpenError::Channel(TransportError::Timeout) => {
                f.write_str("the security key did not answer")
            }
            OpenError::Channel(TransportError::Hid(code) | TransportError::Status(code)) => {
                write!(f, "the security key refused a channel (error 0x{code:02x})")
            }
        }
    }
}

pub struct HidAuthenticator {
    path: CString,
    channel: Channel<Hid>,
}

struct Hid(HidDevice);

impl HidIo for Hid {
    fn write_report(&mut self, report: &[u8; REPORT]) -> Result<(), HidError> {
        // hidapi wants the report id first: 0, the device has no numbered reports.
        let mut out = [0u8; REPORT + 1];
        out[1..].copy_from_slice(report);
        self.0.write(&out).map(|_| ())
    }

    fn read_report(&mut self, timeout: Duration) -> Result<Option<[u8; REPORT]>, HidError> {
        let mut buf = [0u8; REPORT];
        let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        match self.0.read_timeout(&mut buf, millis)? {
            0 => Ok(None),
            _ => Ok(Some(buf)),
        }
    }
}

impl HidAuthenticator {
    /// Open the first FIDO device and allocate a CTAPHID channel on it.
    pub fn open() -> Result<Self, OpenError> {
        let api = HidApi::new().map_err(OpenError::Api)?;
        let path = api
            .device_list()
            .find(|d| d.usage_page() == FIDO_USAGE_PAGE && d.usage() == FIDO_USAGE)
            .map(|d| d.path().to_owned())
            .ok_or(OpenError::NoDevice)?;
        let device = api.open_path(&path).map_err(OpenError::Open)?;
        let channel = Channel::open(Hid(device)).map_err(OpenError::Channel)?;
        Ok(HidAuthenticator { path, channel })
    }
}

impl Device for HidAuthenticator {
    fn command(&mut self, command: u8, cbor: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.channel.cbor(command, cbor)
    }

    fn pin_auth(
        &mut self,
        pin: &str,
        client_data_hash: &[u8],
        protocols: &[u64],
    ) -> Result<PinAuth, TransportError> {
        let mut key = FidoKeyHid::new(
            &[HidParam::Path(self.path.to_string_lossy().into_owned())],
            &quiet_config(),
        )
        .map_err(|e| TransportError::Io(LinkError::PinProtocol(e.to_string())))?;
        // Protocol 1 unless the key does only 2 (CTAP 2.1 keys list 2 first
        // but keep 1; ctap-hid-fido2 speaks both).
        let protocol = if protocols.contains(&1) || protocols.is_empty() {
            1
        } else {
            2
        };
        key.pin_protocol_version = u8::try_from(protocol).unwrap_or(1);
        let param = key
            .create_pin_auth(pin, client_data_hash)
            .map_err(|e| status_in_message(&e.to_string()))?;
        Ok((param, protocol))
    }
}

/// ctap-hid-fido2 without any output of its own: no keep-alive message
/// (it would go to stdout or stderr), no debug log.
pub fn quiet_config() -> LibCfg {
    let mut cfg = LibCfg::init();
    cfg.enable_log = false;
    cfg.enable_keep_alive_msg = false;
    cfg.keep_alive_msg = String::new();
    cfg.keep_alive_msg_to_stderr = true;
    cfg
}

/// ctap-hid-fido2 reports CTAP2 errors as text, "response_status err =
/// 0x31 CTAP2_ERR_PIN_INVALID ..."; recover the status byte from it.
pub fn status_in_message(message: &str) -> TransportError {
    let code = message.split("err = 0x").nth(1).and_then(|rest| {
        let hex: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        u8::from_str_radix(&hex, 16).ok()
    });
    match code {
        Some(code) => TransportError::Status(code),
        None => TransportError::Io(LinkError::PinProtocol(message.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctap_hid_fido2_error_texts() {
        assert!(matches!(
            status_in_message("response_status err = 0x31 CTAP2_ERR_PIN_INVALID   PIN Invalid."),
            TransportError::Status(0x31)
        ));
        assert!(matches!(
            status_in_message("response_status err = 0x34 CTAP2_ERR_PIN_AUTH_BLOCKED PIN authentication, pinAuth, blocked.Requires power recycle to reset."),
            TransportError::Status(0x34)
        ));
        assert!(matches!(
            status_in_message("response_status err = 0xF CTAP?"),
            TransportError::Status(0x0f)
        ));
        assert!(matches!(
            status_in_message("pin not set"),
            TransportError::Io(LinkError::PinProtocol(text)) if text == "pin not set"
        ));
        assert!(matches!(
            status_in_message("read err = 0xFE CTAP2_ERR_VENDOR"),
            TransportError::Status(0xfe)
        ));
    }

    #[test]
    fn library_stays_quiet() {
        let cfg = quiet_config();
        assert!(!cfg.enable_log);
        assert!(!cfg.enable_keep_alive_msg);
        assert!(cfg.keep_alive_msg.is_empty());
    }
}
