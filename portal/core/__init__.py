"""What every domain uses: model base, money and time, audit chain, permissions, PDF rendering."""
