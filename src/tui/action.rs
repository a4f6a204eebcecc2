//! What the user asked for: produced by `keys` from key presses and mouse events, applied
//! by the reducer.

use ratatui_textarea::Input;

use super::state::{Axis, Focus, View};

/// What the user asked for; produced by `keys`, applied by the reducer.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    None,
    Quit,
    ShowHelp,
    CloseOverlay,
    FocusNext,
    FocusPrev,
    Focus(Focus),
    ToggleScale,
    NextView,
    SetView(View),
    ToggleDialMode,
    RescoreNow,
    OpenPresets,
    NewCandidate,
    DeleteCandidate,
    /// Puts the last deleted candidate back.
    UndoDelete,
    /// Starts over with empty texts (asks first when there are unsaved changes).
    NewSession,
    SelectCandidate(usize),
    /// Moves the selection by this many candidates (wrapping).
    StepCandidate(i32),
    /// Selects the candidate at this place in the ranking.
    SelectRank(usize),
    Turn(f64),
    SetAngle(f64),
    WeightCursor(i32),
    SelectWeight(usize),
    AdjustWeight(f64),
    ResetDirection,
    /// Moves one of the dial plane's axes to the next (1) or previous (−1) attribute.
    StepAxis(Axis, i32),
    /// Puts the attribute under the weight cursor on one of the plane's axes.
    AxisAtCursor(Axis),
    /// Takes the selected candidate's gating direction (ArmoRM's own) as the weights.
    AdoptModelDirection,
    SaveSession,
    OpenSession,
    Export,
    /// Exports the selected candidate's trajectory, when the view shows one for its text.
    ExportTrajectory,
    /// A key for the focused editor.
    Edit(Input),
    Undo,
    Redo,
    SelectAll,
    /// Paste the editor's own clipboard (what it last cut or copied).
    PasteYank,
    /// A click in an editor at a position relative to its text area.
    ClickEditor {
        focus: Focus,
        row: u16,
        col: u16,
    },
    /// Wheel over an editor: lines to scroll (negative is up).
    ScrollEditor {
        focus: Focus,
        lines: i16,
    },
    /// A press on the dial: point it at this angle and follow the drag.
    StartDragAt(f64),
    EndDrag,
    HelpScroll(i32),
    OverlayMove(i32),
    OverlayAccept,
    OverlayDelete,
    OverlayInput(Input),
    /// In the presets list: save the current direction under a new name.
    SavePresetAs,
    /// In an input box: select its whole text (as Ctrl-A does in the editors).
    OverlaySelectAll,
    /// Says something in the status line (a key that does nothing here, and why).
    Tell(&'static str),
}
