       IDENTIFICATION DIVISION.
       PROGRAM-ID. RKEYCONF.
      * READ NEXT of a RELATIVE file reaching a record whose number
      * does not fit the RELATIVE KEY item: status 14 (an AT END
      * condition), the key item, the record area, and what the next
      * READ NEXT, REWRITE and START do, for DISPLAY and binary keys.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT LOADER ASSIGN TO "RKEYREL"
               ORGANIZATION RELATIVE ACCESS RANDOM
               RELATIVE KEY WK FILE STATUS FS.
           SELECT SEQ2 ASSIGN TO "RKEYREL"
               ORGANIZATION RELATIVE ACCESS SEQUENTIAL
               RELATIVE KEY K2 FILE STATUS FS.
           SELECT DYN2 ASSIGN TO "RKEYREL"
               ORGANIZATION RELATIVE ACCESS DYNAMIC
               RELATIVE KEY D2 FILE STATUS FS.
           SELECT DYNB ASSIGN TO "RKEYREL"
               ORGANIZATION RELATIVE ACCESS DYNAMIC
               RELATIVE KEY BK FILE STATUS FS.
           SELECT SEQ1 ASSIGN TO "RKEYREL"
               ORGANIZATION RELATIVE ACCESS SEQUENTIAL
               RELATIVE KEY K1 FILE STATUS FS.
       DATA DIVISION.
       FILE SECTION.
       FD LOADER.
       01 LOADER-REC   PIC X(8).
       FD SEQ2.
       01 SEQ2-REC     PIC X(8).
       FD DYN2.
       01 DYN2-REC     PIC X(8).
       FD DYNB.
       01 DYNB-REC     PIC X(8).
       FD SEQ1.
       01 SEQ1-REC     PIC X(8).
       WORKING-STORAGE SECTION.
       01 FS           PIC XX.
       01 WK           PIC 9(6).
       01 K2           PIC 99.
       01 D2           PIC 99.
       01 BK           PIC 99 COMP.
       01 K1           PIC 9.
       01 WHAT         PIC X(12).
       PROCEDURE DIVISION.
           OPEN OUTPUT LOADER DISPLAY "open output " FS
           MOVE 3 TO WK PERFORM LOAD
           MOVE 9 TO WK PERFORM LOAD
           MOVE 12 TO WK PERFORM LOAD
           MOVE 99 TO WK PERFORM LOAD
           MOVE 100 TO WK PERFORM LOAD
           MOVE 101 TO WK PERFORM LOAD
           MOVE 250 TO WK PERFORM LOAD
           CLOSE LOADER

           OPEN I-O SEQ2 DISPLAY "open seq pic 99 " FS
           PERFORM 5 TIMES
              MOVE ALL "*" TO SEQ2-REC
              READ SEQ2 NEXT
                 AT END DISPLAY "  at end " FS " " K2 " " SEQ2-REC
                 NOT AT END DISPLAY "  read " FS " " K2 " " SEQ2-REC
              END-READ
           END-PERFORM
           PERFORM 1 TIMES
              MOVE ALL "*" TO SEQ2-REC
              READ SEQ2 NEXT
              DISPLAY "  read " FS " " K2 " " SEQ2-REC
           END-PERFORM
           MOVE "REWRITE" TO SEQ2-REC
           REWRITE SEQ2-REC DISPLAY "  rewrite after 14 " FS
           DELETE SEQ2 DISPLAY "  delete after 14 " FS
           CLOSE SEQ2

           OPEN I-O DYN2 DISPLAY "open dynamic pic 99 " FS
           MOVE 10 TO D2 START DYN2 KEY > D2 DISPLAY "  start > 10 " FS
           MOVE "next" TO WHAT
           PERFORM DYN2-NEXT 4 TIMES
           MOVE 99 TO D2 DELETE DYN2 DISPLAY "  delete 99 " FS
           PERFORM DYN2-NEXT 2 TIMES
           MOVE 5 TO D2 START DYN2 KEY >= D2 DISPLAY "  start >= 5 " FS
           PERFORM DYN2-NEXT 3 TIMES
           MOVE 12 TO D2 MOVE "random" TO WHAT PERFORM DYN2-READ
           MOVE "next" TO WHAT
           PERFORM DYN2-NEXT 2 TIMES
           MOVE 98 TO D2 MOVE "NEW-98" TO DYN2-REC
           WRITE DYN2-REC DISPLAY "  write 98 " FS
           MOVE 12 TO D2 START DYN2 KEY > D2 DISPLAY "  start > 12 " FS
           PERFORM DYN2-NEXT 3 TIMES
           CLOSE DYN2

           OPEN INPUT DYNB DISPLAY "open dynamic comp " FS
           MOVE 50 TO BK START DYNB KEY >= BK
           DISPLAY "  start >= 50 " FS
           PERFORM 3 TIMES
              MOVE ALL "*" TO DYNB-REC
              READ DYNB NEXT
              DISPLAY "  read " FS " " BK " " DYNB-REC
           END-PERFORM
           CLOSE DYNB

           OPEN INPUT SEQ1 DISPLAY "open seq pic 9 " FS
           PERFORM 3 TIMES
              MOVE ALL "*" TO SEQ1-REC
              READ SEQ1 NEXT
              DISPLAY "  read " FS " " K1 " " SEQ1-REC
           END-PERFORM
           CLOSE SEQ1
           STOP RUN.

       LOAD.
           MOVE SPACES TO LOADER-REC
           STRING "REC-" WK(4:3) DELIMITED BY SIZE INTO LOADER-REC
           WRITE LOADER-REC DISPLAY "write " WK " " FS.
       DYN2-NEXT.
           MOVE ALL "*" TO DYN2-REC
           READ DYN2 NEXT
           DISPLAY "  " WHAT " " FS " " D2 " " DYN2-REC.
       DYN2-READ.
           MOVE ALL "*" TO DYN2-REC
           READ DYN2
           DISPLAY "  " WHAT " " FS " " D2 " " DYN2-REC.
