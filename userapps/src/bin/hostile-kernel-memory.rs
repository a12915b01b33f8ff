//! Kernel memory is paid for: a child that asks the kernel to keep ever more records for
//! it is refused with a typed error when its account is spent, and nobody else notices.
//!
//! The kernel's heap holds every environment's capability tables, mapping records,
//! environment records and network objects. Uncharged, one environment could fill it: with
//! a 256-frame quota, map one frame at 65,536 addresses and the next mapping panics the
//! kernel; or create a few hundred empty environments, after which nobody can spawn and a
//! 4 KiB `ConsoleWrite` panics it. Each attack here runs in a fresh child with a modest
//! frame quota (and so the default kernel-memory allowance, 512 bytes a frame), repeats
//! one request until the kernel refuses it, and reports the count and the refusal:
//!
//! | attack | repeated request | refusal expected |
//! |---|---|---|
//! | mappings | one frame mapped at one more page, a full `MapBatch` at a time | `KernelMemoryExceeded` or `QuotaExceeded` (page tables) |
//! | environments | an empty child environment of 8 frames | either |
//! | over-lending | a child lent 1 MiB of kernel memory it does not have (refused at once) | `KernelMemoryExceeded` |
//! | derivations | a derived copy of one frame capability | `KernelMemoryExceeded` or `TableFull` |
//! | a derivation chain | a copy derived from the last copy (destroying the child then removes a chain thousands deep) | either |
//! | grants | a copy of one frame capability granted into a grandchild | either |
//! | endpoints, notifications | a new one | either |
//! | addresses | a claim of one more IPv4 address | either |
//! | bindings | a binding on a fresh run of 4 frames | any of the three |
//! | filters | one more UDP, then TCP port filter on one binding | `KernelMemoryExceeded` or `TableFull` |
//! | emptied filter lists | a binding on a fresh run of 4 frames, given filters until refused, which are then removed | any of the three |
//! | capability churn | a grandchild lent enough for a full table, filled with copies of one frame capability; once refused, all destroyed but a copy made after them | `KernelMemoryExceeded` or `QuotaExceeded` |
//!
//! After each refusal, with the attacker still holding everything it got: its accounts are
//! within their limits, and the kernel's heap holds no more for the attack than the
//! attacker and its family are charged for what they made, and the parent for its
//! capability to the attacker — before this was checked, a binding kept the room its
//! dropped filters had taken, uncharged, so a child lent 512 KiB made the kernel keep
//! megabytes, and the capability arena kept an entry for every capability the churn had
//! made, 789 KB for a child lent 2 MiB; the witness — which ran throughout — makes a 4 KiB
//! console write and a full 512-request `MapBatch`; and the parent spawns a fresh child
//! that runs to its end. Then the attacker is destroyed and the kernel's free frames and
//! heap bytes in use, and the parent's own charges, are exactly what they were before it
//! existed.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::net::{self, Filter};
use exo_abi::syscall::{EnvironmentAccount, Event};
use exo_abi::user::{self, Lend};
use exo_abi::{Error, Handle, Rights};
use userapps::check;
use userapps::hostile::batch;
use userapps::hostile::conservation::Baseline;
use userapps::hostile::shared::Words;
use userapps::hostile::witness::Witness;
use userapps::layout::MANAGED_START;
use userapps::net::Binding;
use userapps::spawn::{self, Child};
use userapps::{facts, println};

userapps::entry!(main);

/// Parent and attacker: the attacker's report, and the NIC capability left for it.
const SHARED: Words = Words::at(MANAGED_START);
/// Words of `SHARED`.
const DONE: u64 = 0;
const COUNT: u64 = 1;
/// The refusal's error code (0: none came).
const REFUSAL: u64 = 2;
const NIC_HANDLE: u64 = 3;
/// Where the mapping attack maps its one frame, page after page.
const ATTACK_PAGES: u64 = MANAGED_START + 0x100_0000_0000;
/// Where the network attacks map their bindings' rings.
const RING_PAGES: u64 = MANAGED_START + 0x200_0000_0000;

/// Requests an attacker makes at most: far more than any allowance here pays for.
const MAX_REQUESTS: u64 = 1 << 18;
/// A quota like the one the kernel panicked under.
const SMALL_QUOTA: u64 = 256;
/// Enough to make hundreds of environments, if nothing else stops it.
const LARGE_QUOTA: u64 = 4096;
/// Enough for hundreds of bindings, each given hundreds of filters in turn.
const CHURN_QUOTA: u64 = 1024;
/// The frame quota of each environment the environment attack makes.
const GRANDCHILD_QUOTA: u64 = 8;
/// Kernel memory the over-lending attack offers a child: far beyond its own allowance.
const OVER_LENT_BYTES: u64 = 1 << 20;
/// The churn's grandchildren: at most this many, each lent enough for a full table.
const CHURN_HOLDERS: usize = 16;
const CHURN_HOLDER_BYTES: u64 = 256 << 10;
const FRESH_QUOTA: u64 = 128;
/// How long an attack may take, in ticks, before the parent gives up on it.
const ATTACK_TICKS: u64 = 120_000;

/// One attack: what the child repeats until the kernel refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attack {
    Mappings,
    Environments,
    OverLending,
    Derivations,
    DerivationChain,
    Grants,
    Endpoints,
    Notifications,
    Addresses,
    Bindings,
    Filters,
    FilterChurn,
    CapabilityChurn,
}

impl Attack {
    const ALL: [Attack; 13] = [
        Attack::Mappings,
        Attack::Environments,
        Attack::OverLending,
        Attack::Derivations,
        Attack::DerivationChain,
        Attack::Grants,
        Attack::Endpoints,
        Attack::Notifications,
        Attack::Addresses,
        Attack::Bindings,
        Attack::Filters,
        Attack::FilterChurn,
        Attack::CapabilityChurn,
    ];

    /// The attack whose number (`attack as u64`) is `number`.
    fn from_number(number: u64) -> Self {
        Self::ALL
            .into_iter()
            .find(|attack| *attack as u64 == number)
            .expect("an attack's number")
    }

    fn quota(self) -> u64 {
        match self {
            Attack::Environments | Attack::DerivationChain | Attack::CapabilityChurn => LARGE_QUOTA,
            Attack::FilterChurn => CHURN_QUOTA,
            _ => SMALL_QUOTA,
        }
    }

    /// The refusals that mean "your account is spent".
    fn expected_refusals(self) -> &'static [Error] {
        use Error::{KernelMemoryExceeded, QuotaExceeded, TableFull};
        match self {
            Attack::Mappings | Attack::Environments | Attack::CapabilityChurn => {
                &[KernelMemoryExceeded, QuotaExceeded]
            }
            Attack::OverLending => &[KernelMemoryExceeded],
            Attack::Bindings | Attack::FilterChurn => {
                &[KernelMemoryExceeded, QuotaExceeded, TableFull]
            }
            _ => &[KernelMemoryExceeded, TableFull],
        }
    }

    /// Requests the kernel must grant before it may refuse (the over-lending child is
    /// refused at once: it asks for more than it has from the start).
    fn most_granted(self) -> u64 {
        match self {
            Attack::OverLending => 0,
            _ => MAX_REQUESTS - 1,
        }
    }
}

fn main(_argument: u64) -> u64 {
    let shared_page = SHARED.allocate().expect("allocate the shared page");
    let witness = Witness::start().expect("start the witness");
    // What the parent and the witness keep for good exists before the baseline: the
    // witness's page tables for its batch, the parent's for its spawn scratch page, and the
    // parent's table grown to hold an attacker's and a fresh child's frames at once.
    witness.probe().expect("the witness's first probe");
    let attacker = Child::create(SMALL_QUOTA).expect("create a child");
    spawn::spawn(|_| 0, 0, FRESH_QUOTA)
        .expect("spawn a child")
        .wait();
    attacker.destroy();
    let baseline = Baseline::take();
    let (in_use, capacity) = user::kernel_memory();
    println!("hostile-kernel-memory: kernel memory {in_use} of {capacity} bytes in use");

    for attack in Attack::ALL {
        run(attack, shared_page, &witness, &baseline);
        witness.check_unharmed("the attack");
        let name = attack_name(attack);
        baseline.expect_came_back("hostile-kernel-memory", name);
    }
    witness.expect_progress(1, ATTACK_TICKS, "every attack");
    witness.check_unharmed("every attack");
    witness.stop();
    check::all_passed("hostile-kernel-memory");
    0
}

fn attack_name(attack: Attack) -> &'static str {
    match attack {
        Attack::Mappings => "mappings",
        Attack::Environments => "environments",
        Attack::OverLending => "over-lending",
        Attack::Derivations => "derivations",
        Attack::DerivationChain => "a derivation chain",
        Attack::Grants => "grants",
        Attack::Endpoints => "endpoints",
        Attack::Notifications => "notifications",
        Attack::Addresses => "addresses",
        Attack::Bindings => "bindings",
        Attack::Filters => "filters",
        Attack::FilterChurn => "emptied filter lists",
        Attack::CapabilityChurn => "capability churn",
    }
}

/// Runs one attack in a fresh child, checks the refusal and that everyone else still gets
/// what they need, then destroys the child.
fn run(attack: Attack, shared_page: Handle, witness: &Witness, baseline: &Baseline) {
    let name = attack_name(attack);
    println!("hostile-kernel-memory: {name}: starting");
    let child = Child::create(attack.quota()).expect("create the attacker");
    SHARED.clear();
    SHARED
        .share_with(shared_page, child.environment())
        .expect("share the page");
    if matches!(
        attack,
        Attack::Addresses | Attack::Bindings | Attack::Filters | Attack::FilterChurn
    ) {
        let nic = user::start_info().nic().expect("a network card");
        let rights = user::capability_identify(nic)
            .expect("identify the NIC")
            .rights;
        let granted =
            user::capability_grant(nic, child.environment(), rights).expect("grant the NIC");
        SHARED.write(NIC_HANDLE, granted.to_raw());
    }
    child
        .start(attacker, attack as u64)
        .expect("start the attacker");
    let deadline = facts::ticks() + ATTACK_TICKS;
    while SHARED.read(DONE) == 0 {
        assert!(
            child.is_alive(),
            "the {name} attacker died before it reported"
        );
        assert!(
            facts::ticks() < deadline,
            "the {name} attacker never finished"
        );
        let _ = user::wait(Event::TIMER, 1);
    }
    let count = SHARED.read(COUNT);
    let refusal = Error::try_from(SHARED.read(REFUSAL));
    println!("hostile-kernel-memory: {name}: {count} granted, then {refusal:?}");
    match refusal {
        Ok(error) if attack.expected_refusals().contains(&error) => {}
        Ok(error) => panic!("{name}: refused with {error:?}, not a spent account"),
        Err(_) => panic!("{name}: never refused in {MAX_REQUESTS} requests"),
    }
    assert!(
        count <= attack.most_granted(),
        "{name}: {count} granted, more than {}",
        attack.most_granted()
    );
    accounts_within_limits(&child, name);
    kernel_memory_paid_for(&child, baseline, name);
    check::ok(format_args!(
        "{name}: refused with {:?} after {count}",
        refusal.expect("checked above")
    ));
    others_still_served(name, witness);
    child.destroy();
}

/// The attacker's charges do not exceed its limits.
fn accounts_within_limits(child: &Child, name: &str) {
    let account = |which| child.account(which).expect("read the attacker's accounts");
    let (frames, quota) = (
        account(EnvironmentAccount::FramesCharged),
        account(EnvironmentAccount::FrameQuota),
    );
    let (bytes, limit) = (
        account(EnvironmentAccount::KernelBytesCharged),
        account(EnvironmentAccount::KernelBytesLimit),
    );
    println!(
        "hostile-kernel-memory: {name}: the attacker is charged {frames} of {quota} frames, \
         {bytes} of {limit} kernel bytes"
    );
    assert!(frames <= quota, "{name}: frames charged beyond the quota");
    assert!(
        bytes <= limit,
        "{name}: kernel memory charged beyond the allowance"
    );
}

/// What the kernel's heap holds beyond the baseline is no more than is charged for the
/// attack: what the parent is charged beyond the baseline (the allowance it lent the
/// attacker, its capability to it), less what the attacker and every environment below it
/// were lent and have not used.
fn kernel_memory_paid_for(child: &Child, baseline: &Baseline, name: &str) {
    let now = Baseline::take();
    let kept = now
        .kernel_bytes_in_use
        .saturating_sub(baseline.kernel_bytes_in_use);
    let (mut unused, mut after) = (0, 0);
    while let Some(id) =
        user::environment_next(child.environment(), after).expect("list the attacker's family")
    {
        let account = |which| {
            user::environment_inspect(child.environment(), id, which)
                .expect("read a family member's accounts")
        };
        unused += account(EnvironmentAccount::KernelBytesLimit)
            .saturating_sub(account(EnvironmentAccount::KernelBytesCharged));
        after = id;
    }
    let paid = now
        .kernel_bytes_charged
        .saturating_sub(baseline.kernel_bytes_charged)
        .saturating_sub(unused);
    println!(
        "hostile-kernel-memory: {name}: the kernel keeps {kept} bytes more for the attack; \
         {paid} are charged for it"
    );
    assert!(
        kept <= paid,
        "{name}: the kernel keeps {kept} bytes for the attack, {} more than anyone is charged",
        kept - paid
    );
}

/// With the attacker holding all it got, the witness's console write and batch work, and
/// a fresh child can be spawned and run to its end.
fn others_still_served(name: &str, witness: &Witness) {
    if let Err(outcome) = witness.probe() {
        panic!("{name}: afterwards the witness's probe failed ({outcome:#x})");
    }
    let fresh = spawn::spawn(|_| 0, 0, FRESH_QUOTA)
        .unwrap_or_else(|error| panic!("{name}: afterwards a fresh spawn failed: {error:?}"));
    fresh.wait();
    check::ok(format_args!(
        "{name}: afterwards the witness wrote 4 KiB and mapped a full batch, and a fresh \
         child was spawned and ran"
    ));
}

/// The attacker: repeats its request until refused, reports, and waits to be destroyed.
fn attacker(number: u64) -> u64 {
    let attack = Attack::from_number(number);
    let (count, refusal) = match repeat(attack) {
        Ok(count) => (count, 0),
        Err((count, error)) => (count, error.code()),
    };
    SHARED.write(COUNT, count);
    SHARED.write(REFUSAL, refusal);
    SHARED.write(DONE, 1);
    loop {
        let _ = user::wait(Event::TIMER, u64::MAX / 2);
    }
}

/// Makes the attack's request until the kernel refuses or `MAX_REQUESTS` were granted;
/// returns how many were, and the refusal.
fn repeat(attack: Attack) -> Result<u64, (u64, Error)> {
    let nic = Handle::from_raw(SHARED.read(NIC_HANDLE));
    let frame = || user::frame_allocate(0).map(|(frame, _)| frame);
    match attack {
        Attack::Mappings => {
            let frame = frame().map_err(|error| (0, error))?;
            let pages = (0..MAX_REQUESTS).map(|page| ATTACK_PAGES + page * PAGE_SIZE);
            let (mapped, outcome) =
                batch::map_frame_at(Handle::SELF_ENVIRONMENT, frame, pages, MapFlags::empty());
            outcome.map(|()| mapped).map_err(|error| (mapped, error))
        }
        Attack::Environments => {
            until_refused(&mut |_| user::environment_create(GRANDCHILD_QUOTA).map(drop))
        }
        Attack::OverLending => until_refused(&mut |_| {
            user::environment_create_lending(Lend {
                frames: GRANDCHILD_QUOTA,
                kernel_bytes: OVER_LENT_BYTES,
                slots: 0,
            })
            .map(drop)
        }),
        Attack::Derivations => {
            let frame = frame().map_err(|error| (0, error))?;
            until_refused(&mut |_| {
                user::capability_derive(frame, Rights::READ | Rights::MAP).map(drop)
            })
        }
        Attack::DerivationChain => {
            let mut last = frame().map_err(|error| (0, error))?;
            until_refused(&mut |_| {
                last = user::capability_derive(last, Rights::READ | Rights::MAP)?;
                Ok(())
            })
        }
        Attack::Grants => {
            let frame = frame().map_err(|error| (0, error))?;
            let grandchild =
                user::environment_create(GRANDCHILD_QUOTA).map_err(|error| (0, error))?;
            until_refused(&mut |_| {
                user::capability_grant(frame, grandchild, Rights::READ | Rights::MAP).map(drop)
            })
        }
        Attack::Endpoints => until_refused(&mut |count| user::endpoint_create(count).map(drop)),
        Attack::Notifications => until_refused(&mut |_| user::notification_create(1).map(drop)),
        Attack::Addresses => until_refused(&mut |count| {
            user::net_claim(nic, net::ipv4(10, 64, 0, 0) + 1 + count as u32).map(drop)
        }),
        Attack::Bindings => until_refused(&mut |count| {
            let base = RING_PAGES + (count << net::MIN_RING_ORDER) * PAGE_SIZE;
            Binding::with(net::MIN_RING_ORDER, Rights::FRAME, base, None).map(drop)
        }),
        Attack::Filters => {
            let address =
                user::net_claim(nic, net::ipv4(10, 65, 0, 1)).map_err(|error| (0, error))?;
            let binding = Binding::with(net::MIN_RING_ORDER, Rights::FRAME, RING_PAGES, None)
                .map_err(|error| (0, error))?
                .handle;
            until_refused(&mut |count| {
                let port = (count % 65_535) as u16 + 1;
                let filter = match count < 65_535 {
                    true => Filter::udp(port),
                    false => Filter::tcp(port),
                };
                user::net_filter(binding, address, filter).map(drop)
            })
        }
        Attack::FilterChurn => {
            let address =
                user::net_claim(nic, net::ipv4(10, 66, 0, 1)).map_err(|error| (0, error))?;
            until_refused(&mut |_| {
                let binding = Binding::idle(net::MIN_RING_ORDER)?;
                churn_filters(binding, address)
            })
        }
        Attack::CapabilityChurn => {
            let frame = frame().map_err(|error| (0, error))?;
            churn_capabilities(frame)
        }
    }
}

/// Fills grandchildren with copies of `frame` until the attacker's account can lend no
/// more, then destroys them all but keeps a copy made after them: every capability the
/// account paid for is gone, and the newest, above them all in the kernel's arena, is
/// held. Returns the copies made and the refusal that ended them.
fn churn_capabilities(frame: Handle) -> Result<u64, (u64, Error)> {
    let mut holders = [Handle::SELF_ENVIRONMENT; CHURN_HOLDERS];
    let (mut count, mut made) = (0, 0u64);
    let refusal = loop {
        let lend = Lend {
            frames: GRANDCHILD_QUOTA,
            kernel_bytes: CHURN_HOLDER_BYTES,
            slots: 0,
        };
        match user::environment_create_lending(lend) {
            Ok(holder) if count < CHURN_HOLDERS => {
                holders[count] = holder;
                count += 1;
            }
            Ok(_) => panic!("lent more than {CHURN_HOLDERS} grandchildren"),
            Err(error) => break error,
        }
        while user::capability_grant(frame, holders[count - 1], Rights::READ | Rights::MAP).is_ok()
        {
            made += 1;
        }
    };
    // The account is spent: the last holder goes first, to pay for the newest copy.
    let undone = |error| (made, error);
    let (last, others) = holders[..count].split_last().ok_or((0, refusal))?;
    user::environment_destroy(*last).map_err(undone)?;
    user::capability_derive(frame, Rights::READ | Rights::MAP).map_err(undone)?;
    for &holder in others {
        user::environment_destroy(holder).map_err(undone)?;
    }
    println!(
        "hostile-kernel-memory: capability churn: {made} copies in {count} grandchildren, \
         all gone but one made after them"
    );
    Err((made, refusal))
}

/// Gives `binding` filters on `address` until the kernel refuses one, then revokes the
/// address's capability, which removes them all (filters are made from it): the binding
/// stays, with no filter. The refusal is the request's only if no filter came.
fn churn_filters(binding: Handle, address: Handle) -> Result<(), Error> {
    let mut made: u16 = 0;
    let refusal = loop {
        match user::net_filter(binding, address, Filter::udp(made + 1)) {
            Ok(_) => made += 1,
            Err(error) => break error,
        }
    };
    userapps::memory::revoke_capability(address).expect("revoke the filters");
    match made {
        0 => Err(refusal),
        _ => Ok(()),
    }
}

/// Makes `request(0)`, `request(1)`, ... until the kernel refuses one or `MAX_REQUESTS`
/// were granted; returns how many were, and the refusal.
fn until_refused(request: &mut dyn FnMut(u64) -> Result<(), Error>) -> Result<u64, (u64, Error)> {
    for count in 0..MAX_REQUESTS {
        request(count).map_err(|error| (count, error))?;
    }
    Ok(MAX_REQUESTS)
}
