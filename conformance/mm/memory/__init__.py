"""mm/memory.c, in three modules: :mod:`.fault` (``handle_mm_fault``), :mod:`.zap`
(``zap_pte_range``, ``unmap_mapping_range``) and :mod:`.copy` (``copy_pte_range``)."""
