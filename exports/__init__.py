"""
Downloads shared by every screen (the customer's portal, the staff console,
the admin): CSV files streamed in bounded memory, with one rule that keeps a
spreadsheet from running a cell as a formula. No domain logic: the rows come
from the apps that own them.
"""
