//! The PAM conversation as core's `Prompt`.

use pam::constants::{PAM_PROMPT_ECHO_OFF, PAM_TEXT_INFO};
use pam::conv::Conv;
use tap_core::signin::{ConversationFailed, Prompt};
use zeroize::Zeroizing;

pub struct PamPrompt<'a>(pub Conv<'a>);

impl Prompt for PamPrompt<'_> {
    fn secret(&mut self, prompt: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationFailed> {
        let answer = self
            .0
            .send(PAM_PROMPT_ECHO_OFF, prompt)
            .map_err(|_| ConversationFailed)?;
        // SecretBytes zeroes itself on drop; our copy is zeroed by Zeroizing.
        Ok(answer.map(|secret| Zeroizing::new(secret.as_bytes().to_vec())))
    }

    fn info(&mut self, text: &str) -> Result<(), ConversationFailed> {
        self.0
            .send(PAM_TEXT_INFO, text)
            .map(|_| ())
            .map_err(|_| ConversationFailed)
    }
}
