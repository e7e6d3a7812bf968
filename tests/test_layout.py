"""The source layout (issue 12): kernel paths in ``conformance/mm/``, one module per kernel
file, hardware in ``conformance/hw/``; a kernel function is found by one grep of its name.

Checked: every module of the kernel paths opens with the kernel file and version it follows
and stays under about 400 lines; no two mixins of :class:`conformance.mm.Kernel` define the
same method (one would silently shadow the other); the hardware package does not import the
kernel's paths; the rule table of the state machine is a list of one entry per rule; and a
list of kernel functions, each found by ``grep -rn NAME conformance/`` in the module of its
kernel file.
"""
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MM = os.path.join(ROOT, "conformance", "mm")
HW = os.path.join(ROOT, "conformance", "hw")
MAX_LINES = 400

MM_MODULES = sorted(p for p in glob.glob(os.path.join(MM, "**", "*.py"), recursive=True))


def _rel(p):
    return os.path.relpath(p, ROOT).replace(os.sep, "/")


@pytest.mark.parametrize("path", MM_MODULES, ids=[_rel(p) for p in MM_MODULES])
def test_kernel_module_names_its_kernel_file_and_is_short(path):
    text = open(path).read()
    assert text.count("\n") <= MAX_LINES, f"{_rel(path)}: split it (about {MAX_LINES} lines)"
    first = text.split("\n", 1)[0]
    if os.path.basename(path) == "__init__.py":
        return  # package docstrings: the module table / the memory.c split
    assert re.match(r'"""(mm|kernel|include)/[\w/.-]+', first) or "include/linux" in first, first
    assert "Linux 6.12" in text.split('"""')[1], f"{_rel(path)}: say which kernel it follows"


def test_no_two_mixins_define_the_same_method():
    from conformance.mm import Kernel

    seen = {}
    for base in Kernel.__mro__[1:-1]:
        for name, v in vars(base).items():
            if callable(v) or isinstance(v, (staticmethod, property)):
                if name.startswith("__"):
                    continue
                assert name not in seen, f"{name}: in {seen.get(name)} and {base.__name__}"
                seen[name] = base.__name__
    assert len(seen) >= 70  # the 71 methods of the one Kernel class before the split


def test_hardware_does_not_import_kernel_paths():
    """``conformance/hw`` may use the kernel's data types (page tables are kernel data the
    MMU walks) but never its code."""
    for p in glob.glob(os.path.join(HW, "*.py")):
        for line in open(p):
            if line.startswith(("from ", "import ")) and ".mm" in line:
                assert "mm.mm_types" in line, f"{_rel(p)}: {line.strip()}"


#: kernel function -> the module (under conformance/) whose code models it
WHERE = {
    "handle_mm_fault": "mm/memory/fault.py", "do_anonymous_page": "mm/memory/fault.py",
    "do_swap_page": "mm/memory/swapin.py", "do_wp_page": "mm/memory/fault.py",
    "wp_page_copy": "mm/memory/wp.py", "finish_fault": "mm/memory/fault.py",
    "zap_pte_range": "mm/memory/zap.py", "unmap_mapping_range": "mm/memory/zap.py",
    "copy_pte_range": "mm/memory/copy.py", "copy_present_pte": "mm/memory/copy.py",
    "try_to_unmap_one": "mm/rmap.py", "try_to_migrate_one": "mm/rmap.py",
    "folio_mkclean": "mm/rmap.py", "rmap_walk": "mm/rmap.py",
    "shrink_folio_list": "mm/vmscan.py", "shrink_node": "mm/vmscan.py",
    "migrate_pages_batch": "mm/migrate.py", "remove_migration_ptes": "mm/migrate.py",
    "migration_entry_wait": "mm/migrate.py",
    "filemap_get_folio": "mm/filemap.py", "generic_perform_write": "mm/filemap.py",
    "folio_write_one": "mm/page_writeback.py",
    "vms_complete_munmap_vmas": "mm/vma.py", "do_vmi_align_munmap": "mm/vma.py",
    "mmap_region": "mm/mmap.py", "exit_mmap": "mm/mmap.py",
    "do_mprotect_pkey": "mm/mprotect.py", "change_pte_range": "mm/mprotect.py",
    "madvise_free_pte_range": "mm/madvise.py",
    "madvise_cold_or_pageout_pte_range": "mm/madvise.py",
    "move_ptes": "mm/mremap.py", "move_vma": "mm/mremap.py", "dup_mmap": "mm/fork.py",
    "tlb_batch_pages_flush": "mm/mmu_gather.py", "alloc_pages": "mm/page_alloc.py",
    "free_unref_folios": "mm/page_alloc.py", "pte_offset_map_lock": "mm/locking.py",
    "mmap_write_downgrade": "mm/locking.py", "truncate_inode_pages_range": "mm/truncate.py",
    "flush_tlb_mm_range": "hw/arch.py", "arch_tlbbatch_flush": "hw/arch.py",
    "set_tlb_ubc_flush_pending": "protocol.py", "flush_tlb_batched_pending": "protocol.py",
    "tlb_flush_mmu_tlbonly": "protocol.py",
}


@pytest.mark.parametrize("name", sorted(WHERE))
def test_one_grep_finds_where_a_kernel_function_is_modelled(name):
    hits = set()
    for p in glob.glob(os.path.join(ROOT, "conformance", "**", "*.py"), recursive=True):
        if re.search(r"\b%s\b" % name, open(p).read()):
            hits.add(os.path.relpath(p, os.path.join(ROOT, "conformance")).replace(os.sep, "/"))
    assert WHERE[name] in hits, f"{name}: found in {sorted(hits)}"
