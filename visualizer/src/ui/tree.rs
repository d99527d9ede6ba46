//! The parent tree: each greenlet under its parent, with an arrow to the parent (where its
//! result goes). Re-parenting slides the node and its arrow to the new place; a death fades
//! the node to grey and crosses it out, over [`ANIMATION_SECONDS`].

use std::collections::HashMap;

use egui::{
    Align2, Color32, FontId, Id, Pos2, Rect, Role, Sense, Shape, Stroke, StrokeKind, Ui, Vec2,
    WidgetInfo, pos2,
};
use greenlet::trace::{EventKind, GreenletState, State};

use super::style;
use crate::model::TraceModel;

/// How long a re-parenting or a death takes to animate.
pub const ANIMATION_SECONDS: f32 = 0.3;

const NODE: Vec2 = Vec2::new(92.0, 24.0);
const LEVEL_GAP: f32 = 22.0;

/// Where each node goes: computed from the parent links of one snapshot.
#[derive(Debug, Default, PartialEq)]
pub struct Layout {
    /// Node centres, relative to the drawing's top-left corner.
    pub centres: HashMap<u64, Pos2>,
    /// The size everything takes.
    pub size: Vec2,
}

/// Lays out the forest of `states`: depth gives the row (`row_pitch` apart), and each leaf
/// takes the next column, with parents centred over their children. Linear in the number of
/// greenlets.
pub fn layout(states: &[&GreenletState], column_width: f32, row_pitch: f32) -> Layout {
    let present: HashMap<u64, usize> = states.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    let mut children: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut roots = Vec::new();
    for s in states {
        match s.parent.filter(|p| present.contains_key(p)) {
            Some(p) => children.entry(p).or_default().push(s.id),
            None => roots.push(s.id),
        }
    }
    let mut centres = HashMap::new();
    let mut next_column = 0.0f32;
    let mut depth_max = 0usize;
    // Iterative post-order walk: parent links cannot form cycles, but a corrupt trace could.
    for root in roots {
        let mut stack: Vec<(u64, usize, bool)> = vec![(root, 0, false)];
        while let Some((id, depth, expanded)) = stack.pop() {
            depth_max = depth_max.max(depth);
            let kids = children.get(&id).map(Vec::as_slice).unwrap_or(&[]);
            if !expanded && !kids.is_empty() && depth < states.len() {
                stack.push((id, depth, true));
                stack.extend(kids.iter().rev().map(|&k| (k, depth + 1, false)));
                continue;
            }
            let y = NODE.y / 2.0 + depth as f32 * row_pitch;
            let placed: Vec<f32> = kids
                .iter()
                .filter_map(|k| centres.get(k))
                .map(|p: &Pos2| p.x)
                .collect();
            let x = if expanded && !placed.is_empty() {
                (placed[0] + placed[placed.len() - 1]) / 2.0
            } else {
                let x = next_column + column_width / 2.0;
                next_column += column_width;
                x
            };
            centres.insert(id, pos2(x, y));
        }
    }
    Layout {
        size: Vec2::new(next_column, depth_max as f32 * row_pitch + NODE.y),
        centres,
    }
}

/// How many levels below the roots the deepest greenlet sits (parent links of `states`).
fn depth(states: &[&GreenletState]) -> usize {
    let parent: HashMap<u64, Option<u64>> = states.iter().map(|s| (s.id, s.parent)).collect();
    states
        .iter()
        .map(|s| {
            let mut d = 0;
            let mut at = s.parent;
            // Bounded by the number of greenlets, in case a corrupt trace has a cycle.
            while let Some(p) = at.filter(|_| d < states.len()) {
                match parent.get(&p) {
                    Some(next) => {
                        d += 1;
                        at = *next;
                    }
                    None => break,
                }
            }
            d
        })
        .max()
        .unwrap_or(0)
}

/// At most this many nodes (the running greenlet's always among them; a node whose parent is
/// not shown becomes a root).
pub const MAX_NODES: usize = 40;

/// Draws the tree after event `step`; returns how many nodes.
pub fn show(ui: &mut Ui, model: &TraceModel, step: usize) -> usize {
    let (states, hidden) = model.shown(step, MAX_NODES);
    if hidden > 0 {
        ui.weak(format!("{hidden} more greenlets not drawn"));
    }
    let column = (NODE.x + 10.0).min((ui.available_width() / states.len().max(1) as f32).max(40.0));
    // Rows squeeze together (down to a small gap) to fit a deep tree in the space there is.
    let room = ui.available_height().max(NODE.y + 8.0);
    let depth = depth(&states);
    let pitch = if depth == 0 {
        NODE.y + LEVEL_GAP
    } else {
        ((room - NODE.y) / depth as f32).clamp(NODE.y + 6.0, NODE.y + LEVEL_GAP)
    };
    let plan = layout(&states, column, pitch);
    let height = plan.size.y.min(room);
    let (response, painter) =
        ui.allocate_painter(Vec2::new(ui.available_width(), height), Sense::hover());
    let origin =
        response.rect.min + Vec2::new(((response.rect.width() - plan.size.x) / 2.0).max(0.0), 0.0);
    let ctx = ui.ctx().clone();
    let animate = |key: (&str, u64), value: f32| {
        ctx.animate_value_with_time(Id::unique(("tree", key)), value, ANIMATION_SECONDS)
    };
    // Animated node centres: a node whose place changes slides there.
    let centres: HashMap<u64, Pos2> = plan
        .centres
        .iter()
        .map(|(&id, p)| {
            let p = origin + p.to_vec2();
            (id, pos2(animate(("x", id), p.x), animate(("y", id), p.y)))
        })
        .collect();
    let event = model.event(step).map(|e| &e.kind);
    let highlighted = |id: u64| match event {
        Some(EventKind::ParentChanged { id: g, .. }) | Some(EventKind::Finish { id: g, .. }) => {
            *g == id
        }
        Some(EventKind::Spawn { id: g, .. }) => *g == id,
        _ => false,
    };

    // Arrows first, so nodes cover their ends.
    for s in &states {
        let (Some(parent), Some(&from)) = (s.parent, centres.get(&s.id)) else {
            continue;
        };
        let Some(&to) = centres.get(&parent) else {
            continue;
        };
        // The arrow's end follows the parent on its own animation, so a re-parenting swings the
        // arrow over from the old parent to the new one.
        let to = pos2(animate(("ax", s.id), to.x), animate(("ay", s.id), to.y));
        let start = from - Vec2::new(0.0, NODE.y / 2.0);
        let end = to + Vec2::new(0.0, NODE.y / 2.0);
        let colour = if highlighted(s.id) {
            style::CURSOR
        } else {
            ui.visuals().weak_text_color()
        };
        arrow(&painter, start, end, Stroke::new(1.5, colour));
    }
    for s in &states {
        let Some(&centre) = centres.get(&s.id) else {
            continue;
        };
        node(ui, &painter, model, s, centre, highlighted(s.id));
    }
    // Each node is a widget of its own: a tooltip, and a name for screen readers and tests
    // (its rectangle is where the node is drawn, animation included).
    for s in &states {
        let Some(&centre) = centres.get(&s.id) else {
            continue;
        };
        let parent = s
            .parent
            .map_or("none".to_owned(), |p| model.label(p).to_owned());
        let text = format!(
            "tree node {}: {}, parent {parent}",
            model.label(s.id),
            style::state_name(s.state)
        );
        let node = ui.interact(
            Rect::from_center_size(centre, NODE),
            response.id.with(("node", s.id)),
            Sense::hover(),
        );
        node.widget_info(|| WidgetInfo::labeled(Role::TreeItem, true, &text));
        node.on_hover_text(&text["tree node ".len()..]);
    }
    states.len()
}

/// One node: a rounded box in the state's colour; the dead fade to grey and get crossed out.
fn node(
    ui: &Ui,
    painter: &egui::Painter,
    model: &TraceModel,
    s: &GreenletState,
    centre: Pos2,
    highlighted: bool,
) {
    let dead = ui.ctx().animate_bool_with_time(
        Id::unique(("tree dead", s.id)),
        s.state == State::Dead,
        ANIMATION_SECONDS,
    );
    let live_colour = if s.state == State::Dead {
        style::state_colour(State::Suspended)
    } else {
        style::state_colour(s.state)
    };
    let colour = lerp(live_colour, style::state_colour(State::Dead), dead);
    let rect = Rect::from_center_size(centre, NODE * (1.0 - 0.12 * dead));
    painter.rect_filled(rect, 5.0, colour.gamma_multiply(0.3));
    let width = if s.state == State::Running { 2.5 } else { 1.2 };
    painter.rect_stroke(rect, 5.0, Stroke::new(width, colour), StrokeKind::Inside);
    if highlighted {
        painter.rect_stroke(
            rect.expand(3.0),
            7.0,
            Stroke::new(1.5, style::CURSOR),
            StrokeKind::Outside,
        );
    }
    painter.text(
        centre,
        Align2::CENTER_CENTER,
        style::truncate(model.label(s.id), 12),
        FontId::proportional(12.0),
        ui.visuals().strong_text_color(),
    );
    if dead > 0.0 {
        let cross = Stroke::new(1.5, style::state_colour(State::Dead).gamma_multiply(dead));
        painter.line_segment([rect.left_top(), rect.right_bottom()], cross);
        painter.line_segment([rect.left_bottom(), rect.right_top()], cross);
    }
}

/// A line with an arrowhead at `end`.
fn arrow(painter: &egui::Painter, start: Pos2, end: Pos2, stroke: Stroke) {
    let dir = (end - start).normalized();
    if !dir.x.is_finite() {
        return;
    }
    painter.line_segment([start, end], stroke);
    let side = Vec2::new(-dir.y, dir.x) * 4.0;
    let back = end - dir * 8.0;
    painter.add(Shape::convex_polygon(
        vec![end, back + side, back - side],
        stroke.color,
        Stroke::NONE,
    ));
}

/// Linear blend of two colours.
fn lerp(a: Color32, b: Color32, t: f32) -> Color32 {
    let t = t.clamp(0.0, 1.0);
    let mix = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * t).round() as u8;
    Color32::from_rgb(mix(a.r(), b.r()), mix(a.g(), b.g()), mix(a.b(), b.b()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: u64, parent: Option<u64>) -> GreenletState {
        GreenletState {
            id,
            state: State::Suspended,
            parent,
            stack: None,
            guard: None,
            sp: None,
            stack_used: 0,
            stack_high_water: 0,
            frames: None,
            last_value: None,
        }
    }

    #[test]
    fn children_sit_below_their_parent_which_is_centred_over_them() {
        let states = [
            state(0, None),
            state(1, Some(0)),
            state(2, Some(0)),
            state(3, Some(1)),
        ];
        let refs: Vec<&GreenletState> = states.iter().collect();
        let plan = layout(&refs, 100.0, 40.0);
        let c = |id| plan.centres[&id];
        assert!(c(1).y > c(0).y && c(3).y > c(1).y);
        assert_eq!(c(1).y, c(2).y);
        assert!((c(0).x - (c(1).x + c(2).x) / 2.0).abs() < 0.01);
        assert_eq!(plan.size.x, 200.0, "two leaves, two columns");
        assert_eq!(c(3).y - c(0).y, 80.0, "two rows down");
        assert_eq!(depth(&refs), 2);
    }

    #[test]
    fn a_parent_missing_from_the_snapshot_makes_a_root() {
        let states = [state(5, Some(99))];
        let refs: Vec<&GreenletState> = states.iter().collect();
        let plan = layout(&refs, 100.0, 40.0);
        assert_eq!(plan.centres.len(), 1);
    }

    #[test]
    fn a_cycle_does_not_hang() {
        let states = [state(1, Some(2)), state(2, Some(1))];
        let refs: Vec<&GreenletState> = states.iter().collect();
        let plan = layout(&refs, 100.0, 40.0);
        assert!(
            plan.centres.is_empty(),
            "no root: nothing to draw, but no hang"
        );
    }
}
