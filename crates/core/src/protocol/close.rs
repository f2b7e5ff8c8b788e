//! The WebSocket close codes Pulse sends, in one table (RFC 6455 §7.4.1
//! for the 1000s; 4000–4999 are for the application).

/// Why the server closes a connection; the number goes into the close frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum CloseCode {
    /// The client said goodbye, or the connection ended in order.
    Normal = 1000,
    /// The server is shutting down, or the peer stopped answering pings.
    GoingAway = 1001,
    /// The client broke the WebSocket framing rules.
    ProtocolError = 1002,
    /// A text frame that is not UTF-8.
    InvalidData = 1007,
    /// Too many malformed frames.
    PolicyViolation = 1008,
    /// A frame over the transport's hard size limit.
    TooBig = 1009,
    /// The server dropped the connection on purpose; reconnect.
    Restart = 1012,
    /// The client stayed over its outgoing queue budget even after conflation.
    SlowConsumer = 4008,
}

impl CloseCode {
    /// Every code, for lookups.
    pub const ALL: [CloseCode; 8] = [
        Self::Normal,
        Self::GoingAway,
        Self::ProtocolError,
        Self::InvalidData,
        Self::PolicyViolation,
        Self::TooBig,
        Self::Restart,
        Self::SlowConsumer,
    ];

    /// The number in the close frame.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The code with this number, if Pulse uses it.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_the_ones_clients_already_see() {
        let numbers: Vec<u16> = CloseCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(numbers, [1000, 1001, 1002, 1007, 1008, 1009, 1012, 4008]);
        assert_eq!(u16::from(CloseCode::SlowConsumer), 4008);
    }

    #[test]
    fn numbers_map_back_to_codes() {
        for code in CloseCode::ALL {
            assert_eq!(CloseCode::from_code(code.code()), Some(code));
        }
        assert_eq!(CloseCode::from_code(1011), None);
    }
}
