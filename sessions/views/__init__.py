"""Pages about sessions and agents, one module per page family.

Thin views: every read starts from the viewer's teams (voight.web.scoping), filters through
the one FilterSet of its list (voight.web.lists), and renders the partials the live consumer
renders too."""
