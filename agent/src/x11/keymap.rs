//! The browser's `KeyboardEvent.code` (a physical key, independent of layout) to the X keysym the
//! same key produces unshifted on a US layout. Shift, Ctrl and the rest arrive as keys of their
//! own, so the X server applies them as a real keyboard would.

/// The keysym for `code`, or None for keys we do not forward.
pub fn keysym(code: &str) -> Option<u32> {
    if let Some(letter) = code.strip_prefix("Key") {
        return single_char(letter)
            .filter(char::is_ascii_uppercase)
            .map(|c| c.to_ascii_lowercase() as u32);
    }
    if let Some(digit) = code.strip_prefix("Digit") {
        return single_char(digit)
            .filter(char::is_ascii_digit)
            .map(|c| c as u32);
    }
    if let Some(digit) = code.strip_prefix("Numpad").and_then(single_char) {
        if let Some(d) = digit.to_digit(10) {
            return Some(0xffb0 + d);
        }
    }
    if let Some(n) = code.strip_prefix('F').and_then(|n| n.parse::<u32>().ok()) {
        return (1..=24).contains(&n).then(|| 0xffbe + n - 1);
    }
    let sym = match code {
        "Enter" => 0xff0d,
        "Escape" => 0xff1b,
        "Backspace" => 0xff08,
        "Tab" => 0xff09,
        "Space" => 0x20,
        "Minus" => 0x2d,
        "Equal" => 0x3d,
        "BracketLeft" => 0x5b,
        "BracketRight" => 0x5d,
        "Backslash" => 0x5c,
        "Semicolon" => 0x3b,
        "Quote" => 0x27,
        "Backquote" => 0x60,
        "Comma" => 0x2c,
        "Period" => 0x2e,
        "Slash" => 0x2f,
        "IntlBackslash" => 0x3c,
        "CapsLock" => 0xffe5,
        "PrintScreen" => 0xff61,
        "ScrollLock" => 0xff14,
        "Pause" => 0xff13,
        "Insert" => 0xff63,
        "Home" => 0xff50,
        "PageUp" => 0xff55,
        "Delete" => 0xffff,
        "End" => 0xff57,
        "PageDown" => 0xff56,
        "ArrowLeft" => 0xff51,
        "ArrowUp" => 0xff52,
        "ArrowRight" => 0xff53,
        "ArrowDown" => 0xff54,
        "NumLock" => 0xff7f,
        "NumpadDivide" => 0xffaf,
        "NumpadMultiply" => 0xffaa,
        "NumpadSubtract" => 0xffad,
        "NumpadAdd" => 0xffab,
        "NumpadEnter" => 0xff8d,
        "NumpadDecimal" => 0xffae,
        "NumpadEqual" => 0xffbd,
        "ShiftLeft" => 0xffe1,
        "ShiftRight" => 0xffe2,
        "ControlLeft" => 0xffe3,
        "ControlRight" => 0xffe4,
        "AltLeft" => 0xffe9,
        "AltRight" => 0xffea,
        "MetaLeft" => 0xffeb,
        "MetaRight" => 0xffec,
        "ContextMenu" => 0xff67,
        _ => return None,
    };
    Some(sym)
}

fn single_char(s: &str) -> Option<char> {
    let mut chars = s.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_us_keysyms() {
        let cases = [
            ("KeyA", Some(0x61)),
            ("KeyZ", Some(0x7a)),
            ("Digit0", Some(0x30)),
            ("Digit9", Some(0x39)),
            ("Numpad7", Some(0xffb7)),
            ("F1", Some(0xffbe)),
            ("F12", Some(0xffc9)),
            ("Enter", Some(0xff0d)),
            ("ShiftLeft", Some(0xffe1)),
            ("ArrowUp", Some(0xff52)),
            ("Space", Some(0x20)),
            ("Slash", Some(0x2f)),
        ];
        for (code, sym) in cases {
            assert_eq!(keysym(code), sym, "{code}");
        }
    }

    #[test]
    fn unknown_or_malformed_codes_are_none() {
        for code in [
            "",
            "Key",
            "Keya",
            "KeyAB",
            "Digit",
            "Digit10",
            "F0",
            "F25",
            "Fx",
            "Unidentified",
            "NumpadX",
        ] {
            assert_eq!(keysym(code), None, "{code:?}");
        }
    }
}
