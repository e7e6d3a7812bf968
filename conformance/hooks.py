"""The protocol hooks: where the real kernel has them, where the model calls them, and
``flushcheck new``, which writes a protocol module listing a base's hooks.

:data:`KERNEL` names, for every hook of :class:`conformance.protocol.Protocol`, the
kernel function it stands for and its callers in the real kernel (file and function);
:func:`call_sites` finds the model's callers by reading the kernel paths
(``conformance/mm/``), ``conformance/machine.py`` and ``conformance/protocol.py`` (so it
never goes stale);
:func:`new_module` writes the module ``flushcheck new`` saves. docs/PROTOCOLS.md is the
guide built from the same facts.

Example::

    >>> "move_ptes" in " ".join(call_sites()["flush_tlb_batched_pending"])
    True
    >>> overridden_hooks(load_protocol("immediate"))
    ['should_defer_flush', 'tlb_remove_tlb_entry']
"""
from __future__ import annotations

import ast
import inspect
import os
import textwrap

from .errors import UsageError
from .protocol import Protocol
from .registry import CONSTANTS, load_protocol

#: hook -> (the kernel function it stands for, its callers in the real kernel)
KERNEL: dict[str, tuple[str, str]] = {
    "init_mm": ("mm_init (kernel/fork.c): mm->tlb_flush_batched starts at 0",
                "kernel/fork.c mm_init"),
    "init_vma": ("vm_area_alloc / vma_init (kernel/fork.c, include/linux/mm.h)",
                 "mm/mmap.c mmap_region"),
    "init_task": ("struct task_struct's tlb_ubc (include/linux/sched.h), "
                  "zeroed by dup_task_struct",
                  "kernel/fork.c copy_process"),
    "init_tlb_ubc": ("init_tlb_ubc (mm/vmscan.c, 4.3-4.7; removed since)",
                     "mm/vmscan.c shrink_lruvec (then shrink_node_memcg)"),
    "should_defer_flush": ("should_defer_flush (mm/rmap.c) -> arch_tlbbatch_should_defer",
                           "mm/rmap.c try_to_unmap_one, try_to_migrate_one"),
    "set_tlb_ubc_flush_pending": ("set_tlb_ubc_flush_pending (mm/rmap.c)",
                                  "mm/rmap.c try_to_unmap_one, try_to_migrate_one"),
    "try_to_unmap_flush": ("try_to_unmap_flush (mm/rmap.c) -> arch_tlbbatch_flush",
                           "mm/vmscan.c shrink_folio_list; mm/migrate.c migrate_pages_batch"),
    "try_to_unmap_flush_dirty": ("try_to_unmap_flush_dirty (mm/rmap.c)",
                                 "mm/vmscan.c shrink_folio_list (before pageout)"),
    "flush_tlb_batched_pending": ("flush_tlb_batched_pending (mm/rmap.c)",
                                  "mm/memory.c zap_pte_range; mm/mprotect.c change_pte_range; "
                                  "mm/mremap.c move_ptes; mm/madvise.c madvise_free_pte_range, "
                                  "madvise_cold_or_pageout_pte_range"),
    "try_to_unmap_begin": ("the start of try_to_unmap / try_to_migrate's rmap_walk "
                           "(mm/rmap.c; LUF v12 can_luf_init)",
                           "mm/vmscan.c shrink_folio_list; mm/migrate.c migrate_folio_unmap"),
    "try_to_unmap_end": ("the end of try_to_unmap / try_to_migrate (mm/rmap.c; LUF v12 "
                         "folds tlb_ubc_ro)",
                         "mm/vmscan.c shrink_folio_list; mm/migrate.c migrate_folio_unmap"),
    "walk_abort": ("try_to_unmap_one's walk_abort: label (mm/rmap.c; LUF v12 "
                   "can_luf_fail when it returns false)",
                   "mm/rmap.c try_to_unmap (its rmap_walk)"),
    "shrink_folio_list_keep": ("shrink_folio_list's keep: label (mm/vmscan.c; LUF v12 "
                               "luf_flush(fold_unmap_luf()) for a folio try_to_unmap "
                               "found LUF-able)",
                               "mm/vmscan.c shrink_folio_list"),
    "migrate_folio_move": ("migrate_folio_move (mm/migrate.c), before move_to_new_folio -> "
                           "migrate_folio (folio_migrate_mapping, folio_copy)",
                           "mm/migrate.c migrate_pages_batch"),
    "free_unref_folios": ("free_unref_folios (mm/page_alloc.c)",
                          "mm/vmscan.c shrink_folio_list; mm/migrate.c migrate_folio_done"),
    "page_alloc": ("get_page_from_freelist / prep_new_page (mm/page_alloc.c; LUF's "
                   "luf_takeoff_check_and_fold + try_to_unmap_flush_takeoff)",
                   "mm/page_alloc.c __alloc_pages"),
    "fault_install_pte": ("set_pte_at / set_pte_range / wp_page_reuse's "
                          "ptep_set_access_flags under the PTL",
                          "mm/memory.c finish_fault, do_anonymous_page, do_swap_page, "
                          "wp_page_reuse; mm/filemap.c filemap_map_pages (fault-around, "
                          "MachineConfig.fault_around_pages > 1)"),
    "do_wp_page": ("the top of do_wp_page (mm/memory.c; LUF v10's luf_flush() for a "
                   "normal folio)",
                   "mm/memory.c handle_pte_fault (a write to a present read-only PTE), "
                   "do_swap_page (a write fault's swap-in of a folio that is not exclusive)"),
    "handle_mm_fault_end": ("the end of handle_mm_fault (mm/memory.c; LUF v12's flush point)",
                            "arch/x86/mm/fault.c do_user_addr_fault"),
    "mmap_region": ("mmap_region (mm/mmap.c; __mmap_region in mm/vma.c since 6.13)",
                    "mm/mmap.c do_mmap"),
    "mprotect_fixup": ("mprotect_fixup (mm/mprotect.c)", "mm/mprotect.c do_mprotect_pkey"),
    "mapping_write_begin": ("a_ops->write_begin (mm/filemap.c generic_perform_write; LUF v12)",
                            "mm/filemap.c generic_perform_write"),
    "file_end_write": ("the end of one page's copy in generic_perform_write (LUF v11)",
                       "mm/filemap.c generic_perform_write"),
    "truncate_inode_pages_range": ("the end of truncate_inode_pages_range (mm/truncate.c; "
                                   "LUF v12's luf_flush_mapping (16/26's luf_flush(0), "
                                   "narrowed by 20/26) at its out: label and after "
                                   "truncate_inode_folio's filemap_remove_folio)",
                                   "mm/truncate.c truncate_pagecache_range"),
    "folio_mkclean": ("the end of folio_mkclean (mm/rmap.c; LUF v12's "
                      "luf_flush_mapping, 16/26's luf_flush(0) narrowed by 20/26)",
                      "mm/page-writeback.c folio_clear_dirty_for_io"),
    "context_switch": ("finish_task_switch (kernel/sched/core.c); x86 switch_mm_irqs_off",
                       "kernel/sched/core.c context_switch"),
    "finish_task_switch": ("finish_task_switch (kernel/sched/core.c), the lazy-TLB branch "
                           "(rq->prev_mm set: switched in from a kernel thread) in a user "
                           "task's context; LUF v12 19/26 luf_flush_mm(mm)",
                           "kernel/sched/core.c schedule_tail, __schedule (context_switch)"),
    "tlb_gather_mmu": ("tlb_gather_mmu (mm/mmu_gather.c)",
                       "mm/mmap.c unmap_region; mm/mprotect.c change_protection's callers; "
                       "mm/madvise.c madvise_*_single_vma, zap_page_range_single "
                       "(also unmap_mapping_range's); mm/mmap.c exit_mmap "
                       "(tlb_gather_mmu_fullmm)"),
    "tlb_remove_tlb_entry": ("tlb_remove_tlb_entry / tlb_flush_pte_range "
                             "(include/asm-generic/tlb.h)",
                             "mm/memory.c zap_pte_range; mm/mprotect.c change_pte_range; "
                             "mm/madvise.c madvise_free_pte_range, "
                             "madvise_cold_or_pageout_pte_range"),
    "tlb_flush": ("tlb_flush (arch/x86/include/asm/tlb.h) -> flush_tlb_mm_range",
                  "include/asm-generic/tlb.h tlb_flush_mmu_tlbonly"),
    "tlb_flush_mmu_tlbonly": ("tlb_flush_mmu_tlbonly (include/asm-generic/tlb.h)",
                              "mm/memory.c zap_pte_range (force_flush); "
                              "include/asm-generic/tlb.h tlb_end_vma"),
    "tlb_flush_mmu": ("tlb_flush_mmu (mm/mmu_gather.c): invalidate, then free the batch",
                      "mm/memory.c zap_pte_range (force_flush); mm/mmu_gather.c tlb_finish_mmu"),
    "tlb_end_vma": ("tlb_end_vma (include/asm-generic/tlb.h)",
                    "mm/memory.c unmap_single_vma; mm/mprotect.c change_protection_range"),
    "tlb_finish_mmu": ("tlb_finish_mmu (mm/mmu_gather.c)",
                       "mm/mmap.c unmap_region; mm/mprotect.c mprotect_fixup's caller; "
                       "mm/madvise.c"),
}


_HERE = os.path.dirname(os.path.abspath(__file__))


def model_files() -> list[str]:
    """The model's sources that call protocol hooks, relative to ``conformance/``: every
    module of the kernel paths (``mm/``, in path order), then ``machine.py`` and
    ``protocol.py``.

    Example::

        >>> model_files()[:2], model_files()[-2:]
        (['mm/__init__.py', 'mm/filemap.py'], ['machine.py', 'protocol.py'])
    """
    mm = []
    for root, _dirs, files in os.walk(os.path.join(_HERE, "mm")):
        mm += [os.path.relpath(os.path.join(root, f), _HERE) for f in files if f.endswith(".py")]
    return sorted(p.replace(os.sep, "/") for p in mm) + ["machine.py", "protocol.py"]


def _model_trees():
    """``(path relative to conformance/, ast)`` of every :func:`model_files` file."""
    for fname in model_files():
        with open(os.path.join(_HERE, fname)) as fh:
            yield fname, ast.parse(fh.read())


def hook_names() -> list[str]:
    """Every hook of :class:`Protocol`, in the order the class defines them.

    Example::

        >>> hook_names()[:3]
        ['init_mm', 'init_vma', 'init_task']
    """
    return [n for n, v in Protocol.__dict__.items()
            if inspect.isfunction(v) and not n.startswith("_")]


def call_sites() -> dict[str, list[str]]:
    """hook -> the model functions that call it (``conformance/mm/memory/zap.py
    Kernel.zap_pte_range``, ...), read from the source. A kernel path is named as a method
    of :class:`conformance.mm.Kernel`, which mixes in every module's paths.

    Example::

        >>> call_sites()["migrate_folio_move"]
        ['conformance/mm/migrate.py Kernel.migrate']
    """
    names = set(hook_names())
    out: dict[str, list[str]] = {n: [] for n in names}
    for fname, tree in _model_trees():
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            owner = "Kernel" if cls.name.endswith("Paths") else cls.name
            for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
                for node in ast.walk(fn):
                    if not (isinstance(node, ast.Attribute) and node.attr in names):
                        continue
                    v = node.value
                    on_proto = (isinstance(v, ast.Name) and v.id == "proto") or \
                        (isinstance(v, ast.Attribute) and v.attr == "proto") or \
                        (cls.name == "Protocol" and isinstance(v, ast.Name) and v.id == "self")
                    site = f"conformance/{fname} {owner}.{fn.name}"
                    # (a Protocol method naming itself is no call site; a kernel path may
                    # share its hook's name: RmapPaths.folio_mkclean calls proto.folio_mkclean)
                    own = cls.name == "Protocol" and fn.name == node.attr
                    if on_proto and site not in out[node.attr] and not own:
                        out[node.attr].append(site)
    return out


def must_not_yield() -> set[str]:
    """The hooks the model calls through ``Machine.call_hook`` (or ``call_predicate``,
    which goes through it), where a generator is a
    protocol error (no interleaving point possible there); every other hook may yield.

    Example::

        >>> sorted(must_not_yield())[:3]
        ['context_switch', 'fault_install_pte', 'finish_task_switch']
    """
    names = set(hook_names())
    out = {"init_mm", "init_vma", "init_task"}  # their result is the state they make
    for _fname, tree in _model_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("call_hook", "call_predicate") and node.args and \
                    isinstance(node.args[0], ast.Attribute) and node.args[0].attr in names:
                out.add(node.args[0].attr)
    # called only by the generic mmu_gather code itself, as a plain call (tlb_flush)
    out |= {h for h, where in call_sites().items()
            if where and all(w.startswith("conformance/protocol.py") for w in where)}
    return out


def overridden_hooks(cls) -> list[str]:
    """The hooks ``cls`` (or a class between it and :class:`Protocol`) overrides.

    Example::

        >>> overridden_hooks(load_protocol("linux"))[:2]
        ['init_mm', 'init_task']
    """
    return [n for n in hook_names() if getattr(cls, n) is not getattr(Protocol, n)]


def overridden_constants(cls) -> list[str]:
    """The policy constants (:data:`CONSTANTS`) ``cls`` sets to other values than Protocol.

    Example::

        >>> overridden_constants(load_protocol("hist_2_9_migrate_flush_after_copy"))
        ['MIGRATE_FLUSH_BEFORE_COPY']
    """
    return [c for c in CONSTANTS if getattr(cls, c) != getattr(Protocol, c)]


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_") if p) or "Protocol"


def _first_line(doc) -> str:
    return (inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ") if doc else "").strip()


#: ``new --base`` names for :class:`Protocol` itself: every hook listed, for a new design
GENERIC_BASES = ("protocol", "Protocol", "conformance.protocol:Protocol")


def new_module(name: str, base: str = "linux", path: str | None = None) -> str:
    """The text of a protocol module ``name`` subclassing ``base`` (a protocol reference):
    every hook the base overrides, calling ``super()``, with a docstring naming the kernel
    function, its real callers and the model's; it certifies exactly as the base does.
    ``base`` ``protocol`` (:data:`GENERIC_BASES`) is :class:`Protocol` itself, with every
    hook listed: a new design starts there (a researcher's review, 2026-12-06: the
    generic base was refused, and ``immediate`` lists two hooks). ``path``: where the
    module will be, for the certify command its docstring gives (``./NAME.py``).

    Example::

        >>> text = new_module("my_flush", "immediate")
        >>> "class MyFlush(Immediate):" in text, "return super().should_defer_flush(task, mm)" in text
        (True, True)
        >>> text = new_module("my_scheme", "protocol", "protocols/my_scheme.py")
        >>> "class MyScheme(Protocol):" in text, text.count("    def ") == len(hook_names())
        (True, True)
        >>> "flushcheck certify protocols/my_scheme.py" in text
        True
    """
    if not name.isidentifier():
        raise UsageError(f"flushcheck new: {name!r} is not a Python module name "
                         "(letters, digits, underscores)")
    generic = base in GENERIC_BASES
    if generic:
        real, label = Protocol, "Protocol"
        hooks = hook_names()
    else:
        loaded = load_protocol(base)
        real, label = loaded.__mro__[1], loaded.name
        hooks = overridden_hooks(real)
    cls_name = _camel(name)
    base_name = real.__name__ if real.__name__ != cls_name else "_Base"
    if generic or not real.__module__.startswith("flushcheck_file_"):
        alias = "" if base_name == real.__name__ else f" as {base_name}"
        imp = f"from {real.__module__} import {real.__qualname__}{alias}"
    else:  # a file: load it by path
        imp = (f"from conformance.registry import load_protocol\n\n"
               f"{base_name} = load_protocol({loaded.ref!r}).__mro__[1]")
    sites = call_sites()
    listed = ("Every hook is listed below and calls Protocol's (conformance/protocol.py),\n"
              "which defers no reclaim or migration flush and unmaps through mainline's\n"
              "mmu_gather, so as written it passes" if generic else
              f"Every hook {label} overrides is listed below and calls the base, so as written\n"
              f"it certifies exactly as {label} does")
    lines = [
        f'"""A variant of {label}, written by `flushcheck new {name} '
        f'--base {base}`.',
        "",
        f"{listed}. Edit a hook (or set a policy constant of",
        "conformance/protocol.py) to make your variant, then:",
        "",
        f"    flushcheck certify {path or f'./{name}.py'} --budget 60",
        "",
        "No `yield` is needed for other CPUs to run inside a hook: between any two effects of",
        "a hook marked \"may yield\" (a flush through self.arch, a free, a store to mm.proto,",
        "vma.proto or the protocol's own fields) there is an interleaving point already",
        "(conformance/hookpoints.py). Such a hook may still be a generator: each `yield` is one",
        "more point. Every hook, its call sites and what the reference protocols do there:",
        "docs/PROTOCOLS.md.",
        '"""',
        imp,
        "",
        "",
        f"class {cls_name}({base_name}):",
        f'    """A variant of {label}: {_first_line(real.__doc__)}"""',
    ]
    for c in overridden_constants(real):
        lines += ["", f"    #: {real.__name__}'s value (conformance/protocol.py explains it)",
                  f"    {c} = {getattr(real, c)!r}"]
    no_yield = must_not_yield()
    for h in hooks:
        fn = getattr(real, h)
        params = list(inspect.signature(getattr(Protocol, h)).parameters)[1:]
        args = ", ".join(params)
        kfn, kcallers = KERNEL[h]
        model = "; ".join(sites.get(h, [])) or "(none)"
        doc = [f"``{h}``: {kfn}. " + ("Must not yield." if h in no_yield else "May yield."),
               "", f"Kernel callers: {kcallers}.", f"Model callers: {model}.",
               f"Contract (Protocol): {_first_line(Protocol.__dict__[h].__doc__)}"]
        owner = next(c for c in real.__mro__ if h in c.__dict__)
        if owner is not Protocol:
            doc.append(f"{owner.__name__}: {_first_line(fn.__doc__) or 'overrides it.'}")
        lines += ["", f"    def {h}(self, {args}):"]
        text = []
        for i, d in enumerate(doc):
            text += textwrap.wrap(d, 86, initial_indent="        ",
                                  subsequent_indent="        ") or [""]
        text[0] = '        """' + text[0].lstrip()
        lines += text + ['        """']
        lines.append(f"        return (yield from super().{h}({args}))"
                     if inspect.isgeneratorfunction(fn) else f"        return super().{h}({args})")
    return "\n".join(lines) + "\n"


def write_new(name: str, base: str = "linux", directory: str = ".") -> str:
    """Write ``directory/name.py`` (:func:`new_module`); refuse to overwrite. Returns the path.

    Example::

        >>> write_new("my_flush", "linux", "/tmp")             # doctest: +SKIP
        '/tmp/my_flush.py'
    """
    path = os.path.join(directory, f"{name}.py")
    text = new_module(name, base, path)
    if not os.path.isdir(directory):
        raise UsageError(f"flushcheck new: no directory {directory}")
    try:
        with open(path, "x") as fh:
            fh.write(text)
    except FileExistsError:
        raise UsageError(f"flushcheck new: {path} exists; not overwriting it") from None
    return path


def shipped_protocols() -> list[str]:
    """The modules of ``protocols/`` that come with flushcheck (:data:`protocols.SHIPPED`,
    in discovery order): the guide describes these, so that a module a user drops in
    changes no count of it (nor fails the test that checks it), committed or not (until
    2026-12-05 "shipped" was what ``git ls-files`` tracked, and a user's committed module
    failed that test: a user review).

    Example::

        >>> "linux" in shipped_protocols()
        True
    """
    from protocols import SHIPPED

    from .registry import protocol_names

    return [n for n in protocol_names() if n in SHIPPED]


def overriders(hook: str, names: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """``(class, [modules])``: for every module of :func:`shipped_protocols`, the class in
    its protocol's MRO whose definition of ``hook`` it runs, where that is not
    :class:`Protocol`'s; in the order of the modules' names (``names``: those modules,
    already listed).

    Example::

        >>> [(c, len(mods)) for c, mods in overriders("should_defer_flush")]
        [('Linux', 26), ('Immediate', 1)]
    """
    out: dict[str, list[str]] = {}
    for name in shipped_protocols() if names is None else names:
        for c in load_protocol(name).__mro__[1:]:  # [0]: the loader's wrapper
            if hook in c.__dict__:
                if c is not Protocol:
                    out.setdefault(c.__name__, []).append(name)
                break
    return list(out.items())


#: what docs/PROTOCOLS.md says of a hook's model callers beyond their names
MODEL_NOTE = {
    "truncate_inode_pages_range": "after the page-cache folio is removed, before the "
                                  "hole's blocks are freed",
    "tlb_gather_mmu": "truncate's gather is `zap_page_range_single`'s, exit's "
                      "`tlb_gather_mmu_fullmm` (`tlb.fullmm` is already true)",
}


def guide_facts() -> tuple:
    """What :func:`guide_lines` reads from the code, read once: the model's call sites,
    the hooks that must not yield, the shipped modules."""
    return call_sites(), must_not_yield(), shipped_protocols()


def guide_lines(hook: str, facts: tuple | None = None) -> list[str]:
    """The lines of docs/PROTOCOLS.md's entry for ``hook`` that the code decides: the
    kernel function and its callers (:data:`KERNEL`), the model's callers
    (:func:`call_sites`), whether it may yield (:func:`must_not_yield`) and which classes
    override it (:func:`overriders`). ``python -m conformance.hooks`` writes them into the
    guide; a test checks they are there. ``facts``: :func:`guide_facts`, when many hooks
    are written at once (each read parses every model file).

    Example::

        >>> guide_lines("migrate_folio_move")[1:3]
        ['- model: `Kernel.migrate` (conformance/mm/migrate.py)', '- may yield']
    """
    all_sites, no_yield, shipped = facts or guide_facts()
    fn, callers = KERNEL[hook]
    sites = all_sites[hook]
    model = ", ".join(f"`{where.split(' ')[1]}` ({where.split(' ')[0]})" for where in sites)
    if hook in MODEL_NOTE:
        model += f"; {MODEL_NOTE[hook]}"
    if hook not in no_yield:
        yields = "- may yield"
    elif sites and all(w.startswith("conformance/protocol.py") for w in sites):
        yields = "- must not yield (only the generic code calls it, as a plain call)"
    else:
        yields = "- must not yield"
    over = "; ".join(f"{c} ({', '.join(mods) if len(mods) <= 2 else f'{len(mods)} modules'})"
                     for c, mods in overriders(hook, shipped))
    return [f"- kernel: {fn}; called from {callers}", f"- model: {model}", yields,
            f"- overridden by: {over or 'none (the generic code of conformance/protocol.py)'}"]


#: the first words of the lines :func:`guide_lines` decides, in its order
_GUIDE_KEYS = ("- kernel: ", "- model: ", "- m", "- overridden by: ")


def refresh_guide(text: str) -> str:
    """``text`` (docs/PROTOCOLS.md) with each hook entry's :func:`guide_lines` in place of
    the ones it has; the hand-written lines after them stay.

    Example::

        >>> doc = open("docs/PROTOCOLS.md").read()       # doctest: +SKIP
        >>> refresh_guide(doc) == doc                      # doctest: +SKIP
        True
    """
    lines = text.split("\n")
    facts = guide_facts()
    for hook in hook_names():
        head = next((i for i, ln in enumerate(lines) if ln.startswith(f"### `{hook}(")), None)
        if head is None:
            raise ValueError(f"docs/PROTOCOLS.md has no entry ### `{hook}(...)`: write its "
                             "heading and four placeholder lines, then run this again")
        new = guide_lines(hook, facts)
        for k, key in enumerate(_GUIDE_KEYS):
            at = head + 2 + k
            if not lines[at].startswith(key):
                raise ValueError(f"docs/PROTOCOLS.md, ### `{hook}`: line {at + 1} should "
                                 f"start with {key!r}")
            lines[at] = new[k]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m conformance.hooks: docs/PROTOCOLS.md's decided lines
    _path = os.path.join(_HERE, "..", "docs", "PROTOCOLS.md")
    with open(_path) as _fh:
        _new = refresh_guide(_fh.read())  # all of it before the file is opened to write
    with open(_path, "w") as _fh:
        _fh.write(_new)
