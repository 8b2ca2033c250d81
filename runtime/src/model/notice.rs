//! A notification as `runs show` shows it: what it is about, where it goes and how its
//! delivery stands. Plain data (see [`crate::notify`] for the delivery itself).

use serde::{Deserialize, Serialize};

use super::Millis;

/// Where one notification's delivery to one destination stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not delivered yet: the owner tries (again) at `next_at`.
    Pending,
    /// The destination accepted it.
    Delivered,
    /// Given up: every attempt failed, or the destination refused it for good.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

/// One notification of a run to one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationView {
    /// `on_start`, `on_success`, `on_failure` or `on_duration_warning_threshold_exceeded`.
    pub event: String,
    /// The task it is about (`None`: the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    pub destination: String,
    pub state: DeliveryState,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Millis>,
}
