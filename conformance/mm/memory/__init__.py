"""mm/memory.c, in five modules: :mod:`.fault` (``handle_mm_fault``), :mod:`.wp` (the
anonymous ``do_wp_page`` and ``wp_page_copy``), :mod:`.swapin` (``do_swap_page``), :mod:`.zap`
(``zap_pte_range``, ``unmap_mapping_range``) and :mod:`.copy` (``copy_pte_range``)."""
