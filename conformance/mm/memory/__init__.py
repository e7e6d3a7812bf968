"""mm/memory.c, in four modules: :mod:`.fault` (``handle_mm_fault``), :mod:`.swapin`
(``do_swap_page``), :mod:`.zap`
(``zap_pte_range``, ``unmap_mapping_range``) and :mod:`.copy` (``copy_pte_range``)."""
