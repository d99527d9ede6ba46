//! A greenlet's body: the user's closure, kept inside the greenlet's control block when it is
//! small.
//!
//! A `Box<dyn FnMut>` costs a `malloc` and a `free` per greenlet for any closure that captures
//! something, which is most of them (a handle, an `Rc`, a counter); corosensei keeps its
//! closure on the coroutine's stack and pays nothing. Closures of up to [`INLINE_BYTES`] with
//! at most pointer alignment live in place here instead; larger ones are boxed.

use std::marker::PhantomData;
use std::mem::{MaybeUninit, align_of, size_of};

use crate::value::Value;

/// The largest closure kept in place: four words, room for a few captured handles or `Rc`s.
pub(crate) const INLINE_BYTES: usize = 4 * size_of::<usize>();

type Storage = [usize; INLINE_BYTES / size_of::<usize>()];

/// A type-erased `FnMut(Value) -> R` whose result is turned into a [`Value`].
pub(crate) struct Body {
    /// The closure itself when it fits, else a `Box` of it (its raw pointer).
    storage: MaybeUninit<Storage>,
    vtable: &'static Vtable,
    /// The closure need not be `Send`.
    _not_send: PhantomData<*const ()>,
}

struct Vtable {
    /// Takes the argument as the three words of a `Value`, in registers (a `Value` argument
    /// would be passed through memory).
    call: unsafe fn(*mut u8, usize, usize, usize) -> Value,
    /// None for an inline closure with nothing to drop: no call when the greenlet is freed.
    drop: Option<unsafe fn(*mut u8)>,
}

/// The two vtables of closure type `F` returning `R`.
struct Of<F, R>(PhantomData<(F, R)>);

impl<F: FnMut(Value) -> R + 'static, R: 'static> Of<F, R> {
    const FITS: bool = size_of::<F>() <= INLINE_BYTES && align_of::<F>() <= align_of::<usize>();

    const INLINE: Vtable = Vtable {
        call: Self::call_inline,
        drop: if std::mem::needs_drop::<F>() {
            Some(Self::drop_inline)
        } else {
            None
        },
    };

    const BOXED: Vtable = Vtable {
        call: Self::call_boxed,
        drop: Some(Self::drop_boxed),
    };

    /// # Safety
    /// `at` holds an `F` (the storage of an inline body); the words are one value, used once.
    unsafe fn call_inline(at: *mut u8, w0: usize, w1: usize, w2: usize) -> Value {
        // SAFETY: forwarded from the caller; the storage is aligned for `F` (`FITS`).
        let f = unsafe { &mut *at.cast::<F>() };
        // SAFETY: forwarded from the caller.
        Value::new(f(unsafe { Value::from_words([w0, w1, w2]) }))
    }

    /// # Safety
    /// `at` holds an `F`, dropped once.
    unsafe fn drop_inline(at: *mut u8) {
        // SAFETY: forwarded from the caller.
        unsafe { at.cast::<F>().drop_in_place() }
    }

    /// # Safety
    /// `at` holds a `*mut F` made by `Box::into_raw`; the words are one value, used once.
    unsafe fn call_boxed(at: *mut u8, w0: usize, w1: usize, w2: usize) -> Value {
        // SAFETY: forwarded from the caller; the box is alive until `drop_boxed`.
        let f = unsafe { &mut **at.cast::<*mut F>() };
        // SAFETY: forwarded from the caller.
        Value::new(f(unsafe { Value::from_words([w0, w1, w2]) }))
    }

    /// # Safety
    /// `at` holds a `*mut F` made by `Box::into_raw`, dropped once.
    unsafe fn drop_boxed(at: *mut u8) {
        // SAFETY: forwarded from the caller.
        drop(unsafe { Box::from_raw(at.cast::<*mut F>().read()) })
    }
}

impl Body {
    /// Wraps `f`, in place if it fits.
    #[inline(always)]
    pub(crate) fn new<F, R>(f: F) -> Body
    where
        F: FnMut(Value) -> R + 'static,
        R: 'static,
    {
        let mut storage = MaybeUninit::<Storage>::uninit();
        let at = storage.as_mut_ptr().cast::<u8>();
        let vtable = if Of::<F, R>::FITS {
            // SAFETY: `F` fits the storage in size and alignment (`FITS`).
            unsafe { at.cast::<F>().write(f) };
            &Of::<F, R>::INLINE
        } else {
            // SAFETY: a pointer fits the storage.
            unsafe { at.cast::<*mut F>().write(Box::into_raw(Box::new(f))) };
            &Of::<F, R>::BOXED
        };
        Body {
            storage,
            vtable,
            _not_send: PhantomData,
        }
    }

    /// Runs the closure on `v`.
    #[inline(always)]
    pub(crate) fn call(&mut self, v: Value) -> Value {
        let [w0, w1, w2] = v.into_words();
        // SAFETY: the storage holds what `new` put there for this vtable; the words are one
        // value, handed over once.
        unsafe { (self.vtable.call)(self.storage.as_mut_ptr().cast(), w0, w1, w2) }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if let Some(drop) = self.vtable.drop {
            // SAFETY: the storage holds what `new` put there for this vtable, dropped only
            // here.
            unsafe { drop(self.storage.as_mut_ptr().cast()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// Counts its drops through a shared counter.
    struct Tally(Rc<Cell<u32>>);

    impl Drop for Tally {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    /// Calls a counting body three times, then drops it; checks state and drops.
    fn exercise<const N: usize, A: Copy + 'static>(pad: [A; N], fits: bool) {
        let drops = Rc::new(Cell::new(0));
        let tally = Tally(drops.clone());
        let mut calls = 0u32;
        let f = move |v: Value| {
            let _ = (&tally, pad);
            calls += 1;
            calls * v.take::<u32>()
        };
        assert_eq!(Of::<_, u32>::fits_for(&f), fits);
        let mut body = Body::new(f);
        assert_eq!(body.call(Value::new(10u32)).take::<u32>(), 10);
        assert_eq!(
            body.call(Value::new(10u32)).take::<u32>(),
            20,
            "FnMut state is kept"
        );
        assert_eq!(drops.get(), 0);
        drop(body);
        assert_eq!(drops.get(), 1, "the captures are dropped once");
    }

    impl<F: FnMut(Value) -> R + 'static, R: 'static> Of<F, R> {
        fn fits_for(_: &F) -> bool {
            Self::FITS
        }
    }

    #[test]
    fn small_closures_are_kept_in_place() {
        // An Rc (one word), a u32 counter and two more words: 32 bytes at most.
        exercise([0usize; 2], true);
    }

    #[test]
    fn large_closures_are_boxed() {
        exercise([0usize; 8], false);
    }

    #[test]
    fn over_aligned_closures_are_boxed() {
        #[derive(Clone, Copy)]
        #[repr(align(32))]
        struct Wide(#[allow(dead_code)] u8);
        exercise([Wide(0); 1], false);
    }
}
