//! A secret on the wire (a typed pass): zeroed on drop, never in Debug.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub Zeroizing<String>);

impl Secret {
    pub fn new(text: &str) -> Secret {
        Secret(Zeroizing::new(text.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_in_debug() {
        let secret = Secret::new("ABCD-EFGH");
        assert!(!format!("{secret:?}").contains("ABCD"));
        assert_eq!(serde_json::to_string(&secret).unwrap(), r#""ABCD-EFGH""#);
    }
}
