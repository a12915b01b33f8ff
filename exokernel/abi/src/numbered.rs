//! Enums whose numbers are ABI, with the list of every value made from the
//! same declaration: a variant cannot be added without being listed, so the
//! kernel can never answer `UnknownSystemCall` for a call it implements.
//! The number-to-value table is built from the same list at compile time,
//! so decoding a number is one bounds check and one load, not a search.

/// Declares a `#[repr(u64)]` enum with explicit numbers, an associated
/// `ALL` array holding every variant in declaration order, and
/// `from_number`, its inverse.
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

            /// One more than the largest number.
            const TABLE_LENGTH: usize = {
                let mut longest = 0;
                let mut index = 0;
                while index < Self::ALL.len() {
                    let number = Self::ALL[index] as usize;
                    if number + 1 > longest {
                        longest = number + 1;
                    }
                    index += 1;
                }
                longest
            };

            /// Every number's value (`None` for a number no variant has).
            const BY_NUMBER: [Option<$name>; Self::TABLE_LENGTH] = {
                let mut table = [None; Self::TABLE_LENGTH];
                let mut index = 0;
                while index < Self::ALL.len() {
                    table[Self::ALL[index] as usize] = Some(Self::ALL[index]);
                    index += 1;
                }
                table
            };

            /// The value numbered `number`, if there is one.
            pub const fn from_number(number: u64) -> Option<$name> {
                if number < Self::TABLE_LENGTH as u64 {
                    Self::BY_NUMBER[number as usize]
                } else {
                    None
                }
            }
        }
    };
}

pub(crate) use numbered_enum;
