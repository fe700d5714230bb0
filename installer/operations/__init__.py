"""Operations on nodes: each an ordered list of named steps. Only these modules touch the world."""
