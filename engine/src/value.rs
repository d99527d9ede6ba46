//! [`Value`]: the payload that travels with every switch.
//!
//! A switch hands a value of any `'static` type from one greenlet to another. Values of up to
//! 16 bytes (8 on wasm32) with an alignment of at most 8 are stored inline, so passing
//! integers, pointers, `()`, `&'static str` or small structs never touches the allocator;
//! larger values are boxed.
//! The receiver gets the value back with its type checked: asking for the wrong type gives the
//! value back instead of reinterpreting its bytes.

use std::any::{Any, TypeId};
use std::fmt;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop, MaybeUninit};
use std::ptr;

use crate::error::GreenletExit;

/// Bytes a value may occupy to be stored without allocating: the two words of [`Storage`]
/// (16 bytes on 64-bit targets, 8 on wasm32).
const INLINE_SIZE: usize = mem::size_of::<Storage>();
/// Largest alignment stored inline (the buffer is 8-aligned).
const INLINE_ALIGN: usize = 8;

/// Per-type operations, one static table per stored type.
struct VTable {
    type_id: fn() -> TypeId,
    type_name: fn() -> &'static str,
    /// Drops the value held by a storage's two words (inline) or frees the box (boxed);
    /// `None` when there is nothing to do, so dropping a `()` or an integer costs a branch, not
    /// an indirect call.
    drop: Option<unsafe fn(MaybeUninit<usize>, MaybeUninit<usize>)>,
    /// Formats the value when the type is known to be printable, else `None`.
    debug: unsafe fn(*const Storage, &mut fmt::Formatter<'_>) -> Option<fmt::Result>,
    /// Whether this is the engine's [`Thrown`] wrapper: a switch then carries a panic, which
    /// the receiver tells apart from a value with this one flag.
    thrown: bool,
}

#[repr(C, align(8))]
/// Two words rather than 16 bytes, so the optimiser keeps a value in two registers.
struct Storage([MaybeUninit<usize>; 2]);

struct VTableFor<T>(std::marker::PhantomData<T>);

impl<T: 'static> VTableFor<T> {
    const INLINE: bool = mem::size_of::<T>() <= INLINE_SIZE && mem::align_of::<T>() <= INLINE_ALIGN;

    const VTABLE: VTable = VTable {
        type_id: TypeId::of::<T>,
        type_name: std::any::type_name::<T>,
        drop: if Self::INLINE && !mem::needs_drop::<T>() {
            None
        } else {
            Some(Self::drop_words)
        },
        debug: Self::debug,
        thrown: false,
    };

    /// Drops the `T` held by the words of a storage, passed by value: taking the address of
    /// a `Value`'s storage where it is dropped would keep every `Value` in memory, even on
    /// paths that never drop anything, instead of in registers.
    ///
    /// # Safety
    /// The words hold a live `T` stored the way `INLINE` says, not used again.
    unsafe fn drop_words(w0: MaybeUninit<usize>, w1: MaybeUninit<usize>) {
        let mut moved = Storage([w0, w1]);
        let s: *mut Storage = &mut moved;
        if Self::INLINE {
            // SAFETY: the caller guarantees a live inline `T` at the start of the storage.
            unsafe { ptr::drop_in_place(s.cast::<T>()) }
        } else {
            // SAFETY: the caller guarantees the storage holds the pointer of a `Box<T>` that no
            // one else owns.
            unsafe { drop(Box::from_raw(s.cast::<*mut T>().read())) }
        }
    }

    /// # Safety
    /// `s` holds a live `T` stored the way `INLINE` says.
    unsafe fn debug(s: *const Storage, f: &mut fmt::Formatter<'_>) -> Option<fmt::Result> {
        // SAFETY: forwarded from the caller.
        let value: &T = unsafe { Self::get(s) };
        crate::value::debug_known(value as &dyn Any, f)
    }

    /// # Safety
    /// `s` holds a live `T` stored the way `INLINE` says.
    unsafe fn get<'a>(s: *const Storage) -> &'a T {
        if Self::INLINE {
            // SAFETY: forwarded from the caller.
            unsafe { &*s.cast::<T>() }
        } else {
            // SAFETY: forwarded from the caller: the storage holds a valid `*mut T`.
            unsafe { &*s.cast::<*const T>().read() }
        }
    }
}

/// Formats the common printable types; `None` for the others (their type name is used).
fn debug_known(v: &dyn Any, f: &mut fmt::Formatter<'_>) -> Option<fmt::Result> {
    macro_rules! try_types {
        ($($t:ty),*) => {
            $(if let Some(x) = v.downcast_ref::<$t>() { return Some(fmt::Debug::fmt(x, f)); })*
        };
    }
    try_types!(
        (),
        bool,
        char,
        i8,
        i16,
        i32,
        i64,
        i128,
        isize,
        u8,
        u16,
        u32,
        u64,
        u128,
        usize,
        f32,
        f64,
        &'static str,
        String,
        GreenletExit
    );
    None
}

/// A panic payload travelling through a switch (the engine's own type: a [`Value`] holding it
/// is raised as a panic by the receiver, never handed to user code).
pub(crate) struct Thrown(pub(crate) Box<dyn Any + Send>);

/// A value passed by [`switch`](crate::Greenlet::switch), returned by a body, or received back.
///
/// Any `'static` type can be carried. Small values (≤ 16 bytes, 8 on wasm32; alignment ≤ 8)
/// are stored inline without allocating. Extraction is type-checked: [`Value::downcast`]
/// returns the value itself on a type mismatch, [`Value::take`] panics with a message naming
/// both types.
///
/// ```
/// use greenlet::Value;
///
/// let v = Value::new(5_i32);
/// assert!(v.is::<i32>());
/// let v = v.downcast::<String>().unwrap_err(); // wrong type: the value comes back
/// assert_eq!(v.take::<i32>(), 5);
/// ```
pub struct Value {
    storage: Storage,
    vtable: &'static VTable,
    /// A value may hold anything `'static`, an `Rc` included: it must not leave its thread.
    _not_send: PhantomData<*const ()>,
}

impl Value {
    /// Wraps `v`. Wrapping a `Value` returns it unchanged (no double wrapping).
    #[inline(always)]
    pub fn new<T: 'static>(v: T) -> Value {
        if TypeId::of::<T>() == TypeId::of::<Value>() {
            let v = ManuallyDrop::new(v);
            // SAFETY: `T` is `Value` (same `TypeId`), and `v` is never used or dropped again.
            return unsafe { mem::transmute_copy::<T, Value>(&v) };
        }
        // Zeroed first, so the words a switch carries are initialised even for `()` (two register
        // clears; the bytes are then overwritten by the value).
        let mut storage = Storage([MaybeUninit::new(0); 2]);
        if VTableFor::<T>::INLINE {
            // SAFETY: `T` fits the 16-byte, 8-aligned buffer (checked by `INLINE`).
            unsafe { storage.0.as_mut_ptr().cast::<T>().write(v) };
        } else {
            let boxed = Box::into_raw(Box::new(v));
            // SAFETY: a pointer fits the buffer; ownership of the box moves into the value.
            unsafe { storage.0.as_mut_ptr().cast::<*mut T>().write(boxed) };
        }
        Value {
            storage,
            vtable: &VTableFor::<T>::VTABLE,
            _not_send: PhantomData,
        }
    }

    /// A switch message that raises `payload` in the receiver.
    #[inline]
    pub(crate) fn thrown(payload: Box<dyn Any + Send>) -> Value {
        const THROWN: VTable = VTable {
            thrown: true,
            ..VTableFor::<Thrown>::VTABLE
        };
        let mut v = Value::new(Thrown(payload));
        v.vtable = &THROWN;
        v
    }

    /// Whether this message carries a panic (see [`Thrown`]).
    #[inline(always)]
    pub(crate) fn is_thrown(&self) -> bool {
        self.vtable.thrown
    }

    /// The panic payload of a thrown message, or the value itself.
    #[inline]
    pub(crate) fn into_thrown(self) -> Result<Box<dyn Any + Send>, Value> {
        if self.is_thrown() {
            // SAFETY: only `Thrown`'s vtable has the flag set.
            let t = unsafe { self.downcast_unchecked::<Thrown>() };
            Ok(t.0)
        } else {
            Err(self)
        }
    }

    /// The payload of a thrown message, borrowed.
    pub(crate) fn thrown_payload(&self) -> Option<&(dyn Any + Send)> {
        self.is_thrown().then(|| {
            // SAFETY: only `Thrown`'s vtable has the flag set; it is stored inline.
            let t: &Thrown = unsafe { VTableFor::<Thrown>::get(&self.storage) };
            &*t.0
        })
    }

    /// The three machine words of the value, for a switch to carry in registers.
    #[inline(always)]
    pub(crate) fn into_words(self) -> [usize; 3] {
        let this = ManuallyDrop::new(self);
        let [a, b] = this.storage.0;
        // SAFETY: the storage was zeroed before the value was written, so both words are
        // initialised (only the padding bytes of a small stored type may not be; they are
        // carried, never interpreted, until `from_words` gives them back to the same type).
        // Ownership moves with the words.
        unsafe {
            [
                a.assume_init(),
                b.assume_init(),
                this.vtable as *const VTable as usize,
            ]
        }
    }

    /// Rebuilds a value from [`into_words`](Value::into_words).
    ///
    /// # Safety
    /// The words come from `into_words` and are used once.
    #[inline(always)]
    pub(crate) unsafe fn from_words(w: [usize; 3]) -> Value {
        Value {
            // SAFETY: the same bytes `into_words` read out.
            storage: Storage([MaybeUninit::new(w[0]), MaybeUninit::new(w[1])]),
            // SAFETY: the vtable pointer `into_words` read out.
            vtable: unsafe { &*(w[2] as *const VTable) },
            _not_send: PhantomData,
        }
    }

    /// Moves the `T` out without checking the type.
    ///
    /// # Safety
    /// The value holds a `T`.
    #[inline]
    unsafe fn downcast_unchecked<T: 'static>(self) -> T {
        let this = ManuallyDrop::new(self);
        if VTableFor::<T>::INLINE {
            // SAFETY: forwarded from the caller; `this` is never dropped.
            unsafe { this.storage.0.as_ptr().cast::<T>().read() }
        } else {
            // SAFETY: forwarded from the caller: the storage holds the pointer of our box.
            *unsafe { Box::from_raw(this.storage.0.as_ptr().cast::<*mut T>().read()) }
        }
    }

    /// The unit value `()`, what a bare `switch(())` carries.
    #[inline]
    pub fn unit() -> Value {
        Value::new(())
    }

    /// Whether the value holds a `T`.
    #[inline]
    pub fn is<T: 'static>(&self) -> bool {
        // The same table address means the same type; different addresses may still be the same
        // type (each codegen unit may have its own copy of a table), hence the TypeId check.
        ptr::eq(self.vtable, &VTableFor::<T>::VTABLE)
            || (self.vtable.type_id)() == TypeId::of::<T>()
    }

    /// The name of the stored type, as [`std::any::type_name`] gives it.
    pub fn type_name(&self) -> &'static str {
        (self.vtable.type_name)()
    }

    /// Whether this is the [`GreenletExit`] a killed greenlet hands to its parent.
    pub fn is_greenlet_exit(&self) -> bool {
        self.is::<GreenletExit>()
    }

    /// Borrows the stored `T`, or `None` if the value holds another type.
    #[inline]
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        if self.is::<T>() {
            // SAFETY: the type matches, so the storage holds a live `T` stored as `VTableFor<T>`
            // says.
            Some(unsafe { VTableFor::<T>::get(&self.storage) })
        } else {
            None
        }
    }

    /// Takes the stored `T` out, or gives the value back unchanged if it holds another type.
    ///
    /// ```
    /// let v = greenlet::Value::new("hi");
    /// assert_eq!(v.downcast::<&str>().ok(), Some("hi"));
    /// ```
    #[inline]
    pub fn downcast<T: 'static>(self) -> Result<T, Value> {
        if !self.is::<T>() {
            return Err(self);
        }
        // SAFETY: the type matches.
        Ok(unsafe { self.downcast_unchecked::<T>() })
    }

    /// Takes the stored `T` out.
    ///
    /// # Panics
    /// If the value holds another type; the message names both types. Use
    /// [`downcast`](Value::downcast) to handle a mismatch without panicking.
    ///
    /// ```
    /// let g = greenlet::Greenlet::new(|v| v.take::<i32>() * 2);
    /// assert_eq!(g.switch(21).take::<i32>(), 42);
    /// ```
    #[inline]
    #[track_caller]
    pub fn take<T: 'static>(self) -> T {
        match self.downcast::<T>() {
            Ok(v) => v,
            Err(v) => panic!(
                "greenlet value has type `{}`, not the requested `{}`",
                v.type_name(),
                std::any::type_name::<T>()
            ),
        }
    }

    /// A short printable summary: the value for common types, else its type name.
    pub fn summary(&self) -> String {
        format!("{self:?}")
    }
}

impl Drop for Value {
    #[inline]
    fn drop(&mut self) {
        if let Some(drop) = self.vtable.drop {
            // SAFETY: the storage holds a live value of the vtable's type, moved out of `self`
            // (moving a value is a bitwise copy) and dropped only there. The call goes through
            // the vtable, so the caller holds no function address across a switch.
            unsafe { drop(self.storage.0[0], self.storage.0[1]) }
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: the vtable matches the stored type.
        match unsafe { (self.vtable.debug)(&self.storage, f) } {
            Some(r) => r,
            None => write!(f, "<{}>", self.type_name()),
        }
    }
}

impl Default for Value {
    fn default() -> Value {
        Value::unit()
    }
}

// Sanity: the vtable decides the representation; keep the size a switch moves small.
// Three words on 64-bit targets; on wasm32 the 8-aligned storage pads it to 16 bytes.
const _: () = assert!(
    mem::size_of::<Value>()
        == if cfg!(target_pointer_width = "64") {
            24
        } else {
            16
        }
);
const _: () = assert!(INLINE_SIZE == 2 * mem::size_of::<usize>());

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn inline_and_boxed_round_trip() {
        assert!(VTableFor::<u128>::INLINE == (mem::align_of::<u128>() <= 8));
        const { assert!(VTableFor::<[u64; 2]>::INLINE) };
        const { assert!(!VTableFor::<[u64; 3]>::INLINE) };
        assert_eq!(Value::new([1u64, 2]).take::<[u64; 2]>(), [1, 2]);
        assert_eq!(Value::new([1u64, 2, 3]).take::<[u64; 3]>(), [1, 2, 3]);
        assert_eq!(Value::new(String::from("s")).take::<String>(), "s");
    }

    #[test]
    fn wrong_type_gives_value_back() {
        let v = Value::new(vec![1, 2]);
        let v = v.downcast::<i32>().unwrap_err();
        assert_eq!(v.type_name(), "alloc::vec::Vec<i32>");
        assert_eq!(v.downcast::<Vec<i32>>().unwrap(), vec![1, 2]);
    }

    #[test]
    fn wrapping_a_value_does_not_nest() {
        let v = Value::new(Value::new(7u8));
        assert!(v.is::<u8>());
    }

    #[test]
    fn drops_exactly_once() {
        let rc = Rc::new(());
        let v = Value::new(rc.clone());
        assert_eq!(Rc::strong_count(&rc), 2);
        drop(v);
        assert_eq!(Rc::strong_count(&rc), 1);
        let big = Value::new((rc.clone(), [0u64; 4]));
        drop(big);
        assert_eq!(Rc::strong_count(&rc), 1);
        let taken = Value::new(rc.clone()).take::<Rc<()>>();
        assert_eq!(Rc::strong_count(&rc), 2);
        drop(taken);
        assert_eq!(Rc::strong_count(&rc), 1);
    }

    #[test]
    #[should_panic(expected = "has type `&str`, not the requested `i32`")]
    fn take_names_both_types() {
        Value::new("x").take::<i32>();
    }

    #[test]
    fn debug_summaries() {
        assert_eq!(Value::new(5i32).summary(), "5");
        assert_eq!(Value::new("hi").summary(), "\"hi\"");
        assert_eq!(Value::new(vec![1u8]).summary(), "<alloc::vec::Vec<u8>>");
        assert_eq!(Value::unit().summary(), "()");
    }
}
