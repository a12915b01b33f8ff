//! Enums whose numbers are ABI, with the list of every value made from the
//! same declaration: a variant cannot be added without being listed, so the
//! kernel can never answer `UnknownSystemCall` for a call it implements.

/// Declares a `#[repr(u64)]` enum with explicit numbers and an associated
/// `ALL` array holding every variant in declaration order.
macro_rules! numbered_enum {
    (
        $(#[$meta:meta])*
        $visibility:vis enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $number:expr,)*
        }
    ) => {
        $(#[$meta])*
        #[repr(u64)]
        $visibility enum $name {
            $($(#[$variant_meta])* $variant = $number,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$(stringify!($variant)),*].len()] = [$($name::$variant),*];
        }
    };
}

pub(crate) use numbered_enum;
